"""Handler definition files: what to watch, whether they changed, and loading them.

A change is seen by polling: the fingerprint of the handler paths is each file's path,
modification time and size (a directory also stands for the list of its ``*.json`` files), so
adding, removing, editing or replacing a file all change it. Polling works the same on every
platform and filesystem, and a service checks every few seconds at most.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from conductor_events_handlers.loader import EventCheck, LoadResult, load_handlers
from conductor_events_handlers.scripting import ScriptEngine

Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(paths: Sequence[str | Path]) -> Fingerprint:
    """The state of the handler files: ``(path, mtime_ns, size)`` of each; ``-1`` when
    missing."""
    entries: list[tuple[str, int, int]] = []
    for raw in paths:
        path = Path(raw)
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        for file in files:
            try:
                stat = file.stat()
            except OSError:
                entries.append((str(file), -1, -1))
            else:
                entries.append((str(file), stat.st_mtime_ns, stat.st_size))
    return tuple(entries)


class HandlerSource:
    """The handler files a service runs, loaded and compiled on demand."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        engine: ScriptEngine,
        *,
        allowed_env: Collection[str] = (),
        check_event: EventCheck | None = None,
    ) -> None:
        self.paths = list(paths)
        self.engine = engine
        self.allowed_env = allowed_env
        self.check_event = check_event
        self.seen: Fingerprint | None = None

    def changed(self) -> bool:
        """Whether the files differ from the last :meth:`load`."""
        return fingerprint(self.paths) != self.seen

    def load(self) -> LoadResult:
        """Load every handler; the fingerprint is taken first, so an edit made while loading
        is seen by the next :meth:`changed`."""
        self.seen = fingerprint(self.paths)
        return load_handlers(
            self.paths, self.engine, allowed_env=self.allowed_env, check_event=self.check_event
        )
