"""The commands this package adds to ``conductor-events`` (see
:func:`conductor_events_handlers.plugin.register_commands`)."""
