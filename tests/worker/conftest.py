"""The worker tests' fixtures and helpers, shared with every other test folder that tests
``worker``: see :mod:`conductor_events_handlers.testing.worker_harness`."""

from conductor_events_handlers.testing.worker_harness import *  # noqa: F403
