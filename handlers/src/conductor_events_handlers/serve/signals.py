"""SIGTERM, SIGINT and SIGHUP turned into flags the service looks at.

These are plain Python signal handlers that set :class:`threading.Event` flags, not the event
loop's ``add_signal_handler``: when messages keep coming, receiving and acking may complete
without the loop ever polling for signals, so a loop-level handler would only run once the
queue ran dry. The listeners look at the stop flag between messages.

The first SIGTERM or SIGINT asks for a graceful stop. A second one exits the process at once
with ``128 + signal number``: every ack and execution record written so far is already
committed, and whatever was in flight comes back through the broker's redelivery.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

import structlog

log = structlog.get_logger(__name__)

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ServiceSignals:
    """The service's signal flags; :meth:`install` from the main thread, :meth:`restore`
    after."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.reload = threading.Event()
        self.stop_requested_at: float | None = None
        self.stop_signal: str | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for signum in _STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_stop)
        if hasattr(signal, "SIGHUP"):
            self._previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hup)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def request_stop(self, reason: str = "requested") -> None:
        """Ask for a graceful stop, as the first SIGTERM does."""
        if not self.stop.is_set():
            self.stop_requested_at = time.monotonic()
            self.stop_signal = reason
            self.stop.set()

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.stop.is_set():
            log.warning("serve.shutdown.forced", signal=name)
            sys.stderr.flush()
            os._exit(128 + signum)
        self.request_stop(name)

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self.reload.set()
