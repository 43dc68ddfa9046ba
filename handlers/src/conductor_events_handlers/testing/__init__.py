"""Test tools for event handlers: the Conductor API double, a bounded consume loop, the
``conductor-events`` command run as a subprocess, and pytest fixtures for ``serve`` and
``worker`` tests (``service``, ``worker_harness``). Not imported by the rest of the package;
the fixture modules need pytest."""
