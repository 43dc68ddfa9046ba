"""One SQLite file shared by several processes, used from one event loop.

The ``local`` queue and the event handlers' execution records both keep their state this way:
WAL journal, ``synchronous=NORMAL``, one short transaction per operation, run on the event
loop's thread (a statement takes tens of microseconds, less than a hop to a worker thread).
What could block the loop is waiting for another process's write lock, so SQLite's own busy
wait is kept to a few milliseconds and longer waits are retried with ``asyncio.sleep``.
Opening the file is retried the same way: processes starting together meet each other's locks
while they set the file up.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_SQLITE_BUSY_MS = 5


class SqliteFile:
    """A lazily opened connection and the retry loop around every transaction.

    Args:
        path: the database file; created, with ``schema``, when missing.
        schema: SQL run on every open (``CREATE ... IF NOT EXISTS``).
        busy_timeout: seconds an operation may wait for another process's lock.
        label: what the file is, for messages (``"local queue file"``).
        path_key: the property that names the file, for messages.
        busy_key: the property that sets ``busy_timeout``, for messages.
        error: the exception type raised, carrying a one-line message.
    """

    def __init__(
        self,
        path: str,
        schema: str,
        *,
        busy_timeout: float,
        label: str,
        path_key: str,
        busy_key: str,
        error: type[Exception],
    ) -> None:
        self.path = path
        self.schema = schema
        self.busy_timeout = busy_timeout
        self.label = label
        self.path_key = path_key
        self.busy_key = busy_key
        self.error = error
        self._db: sqlite3.Connection | None = None

    def connect(self) -> sqlite3.Connection:
        """The open connection, opening and setting up the file on first use.

        A lock met during set-up propagates as ``sqlite3.OperationalError`` so that
        :meth:`run` retries it.
        """
        if self._db is not None:
            return self._db
        parent = Path(self.path).parent
        if not parent.is_dir():
            raise self.error(
                f"{self.label} {self.path}: directory {parent} does not exist ({self.path_key})"
            )
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_MS}")
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            db.execute("PRAGMA synchronous = NORMAL")
            db.executescript(self.schema)
        except BaseException:
            db.close()
            raise
        if mode != "wal":
            db.close()
            raise self.error(f"{self.label} {self.path}: cannot use WAL mode ({mode})")
        self._db = db
        return db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def describe(self, exc: sqlite3.Error) -> Exception:
        """One line saying what is wrong with the file, naming the property to look at."""
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            reason = "is not an SQLite database, or is corrupt"
        elif "readonly" in text or "unable to open" in text:
            reason = "cannot be opened for writing (check its permissions and directory)"
        else:
            reason = f"failed: {text}"
        return self.error(f"{self.label} {self.path} {reason} ({self.path_key})")

    async def run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run one transaction, retrying asynchronously while another process holds the lock.

        ``operation`` runs synchronously and must leave no transaction open when it returns;
        when it raises, an open transaction is rolled back.
        """
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.001
        while True:
            db = self._db
            try:
                db = self.connect()
                return operation(db)
            except sqlite3.OperationalError as exc:
                _rollback(db)
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise self.describe(exc) from None
                if time.monotonic() >= deadline:
                    raise self.error(
                        f"{self.label} {self.path} stayed locked by another process for "
                        f"{self.busy_timeout:g}s ({self.busy_key})"
                    ) from None
            except sqlite3.DatabaseError as exc:
                _rollback(db)
                raise self.describe(exc) from None
            except BaseException:
                _rollback(db)
                raise
            await asyncio.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.05)


def _rollback(db: sqlite3.Connection | None) -> None:
    if db is not None and db.in_transaction:
        db.rollback()
