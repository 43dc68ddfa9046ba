"""Helpers shared by the core tests: isolated plugin hosts, config files, fake distributions,
and running the real ``conductor-events`` command."""
