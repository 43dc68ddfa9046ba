"""The serve tests' fixtures and helpers, shared with every other test folder that tests
``serve``: see :mod:`conductor_events_handlers.testing.service`."""

from conductor_events_handlers.testing.service import *  # noqa: F403
