from conductor_events.cli import main

main()
