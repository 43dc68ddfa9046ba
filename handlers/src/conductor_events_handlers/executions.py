"""Execution records: what each handler action did with each message, in an SQLite file.

One record per (event, handler, message id, action index), Conductor's ``EventExecution``
(whose id is ``<messageId>_<actionIndex>``), with status ``IN_PROGRESS``, ``COMPLETED``,
``FAILED`` or ``SKIPPED`` and the output or the error. Conductor keys records by handler and
event too (its Redis key holds both), so two handlers on one event never share a record.

Exactly-once for completed actions: before an action runs, :meth:`ExecutionStore.claim`
inserts its record as ``IN_PROGRESS`` only if none exists. A record that is ``COMPLETED``
means the action already happened, so a redelivered message skips it. A ``FAILED`` record, or
an ``IN_PROGRESS`` one older than the lease (its runner died between claiming and finishing,
Conductor's crash window), is taken over and the action runs again. An ``IN_PROGRESS`` record
within its lease belongs to another consumer that is running the action right now: the claim
answers ``BUSY`` and the message is retried later. An owner is ``host:pid:...``: a record whose
owner was a process on this host that no longer exists is taken over at once, without waiting
for the lease, so a service restarted after a crash does not wait minutes for itself.

Statements run on the event loop's thread: each is tens of microseconds (WAL,
``synchronous=NORMAL``). Waiting for another process's lock is done with ``asyncio.sleep``.
"""

from __future__ import annotations

import enum
import json
import os
import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from conductor_events.errors import ConductorEventsError
from conductor_events.local.sqlite_file import SqliteFile

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS event_executions (
    event TEXT NOT NULL,
    handler TEXT NOT NULL,
    message_id TEXT NOT NULL,
    action_index INTEGER NOT NULL,
    action TEXT,
    status TEXT NOT NULL,
    output TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (event, handler, message_id, action_index)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS event_executions_by_message ON event_executions (message_id);
CREATE INDEX IF NOT EXISTS event_executions_by_time ON event_executions (updated_at);
"""

_CLAIM_INSERT = (
    "INSERT INTO event_executions (event, handler, message_id, action_index, action, status,"
    " attempts, owner, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'IN_PROGRESS', 1, ?, ?, ?)"
    " ON CONFLICT DO NOTHING"
)
_KEY = "event = ? AND handler = ? AND message_id = ? AND action_index = ?"
_COLUMNS = (
    "event, handler, message_id, action_index, action, status, output, error, attempts,"
    " created_at, updated_at"
)
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


class ExecutionStoreError(ConductorEventsError):
    """The execution record file cannot be used."""


class ExecutionStatus(enum.StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


class Claim(enum.StrEnum):
    """What :meth:`ExecutionStore.claim` found."""

    CLAIMED = "claimed"
    """The action is this caller's to run."""
    DONE = "done"
    """The action already completed; do not run it again."""
    BUSY = "busy"
    """Another consumer is running it now (its lease has not expired)."""


@dataclass(frozen=True, slots=True)
class ExecutionKey:
    event: str
    handler: str
    message_id: str
    action_index: int

    def params(self) -> tuple[str, str, str, int]:
        return (self.event, self.handler, self.message_id, self.action_index)


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    """One stored execution, as ``conductor-events executions`` shows it."""

    event: str
    handler: str
    message_id: str
    action_index: int
    action: str | None
    status: ExecutionStatus
    output: Any
    error: str | None
    attempts: int
    created_at: float
    updated_at: float

    @property
    def id(self) -> str:
        """Conductor's ``EventExecution`` id: ``<messageId>_<actionIndex>``."""
        return f"{self.message_id}_{self.action_index}"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "messageId": self.message_id,
            "name": self.handler,
            "event": self.event,
            "actionIndex": self.action_index,
            "action": self.action,
            "status": self.status.value,
            "output": self.output,
            "error": self.error,
            "attempts": self.attempts,
            "created": int(self.created_at * 1000),
            "updated": int(self.updated_at * 1000),
        }


def owner_is_gone(owner: str | None) -> bool:
    """Whether ``owner`` (``host:pid:...``) was a process on this host that has exited.

    Only a certain answer counts: another host, this process, a process that exists (or may,
    when its pid was reused), or an owner of another form all say ``False``, and the lease
    decides.
    """
    if not owner or os.name != "posix":  # os.kill(pid, 0) is a probe on POSIX only
        return False
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, under another user
        return False
    return False


class ExecutionStore:
    """Execution records in one SQLite file, used from one event loop.

    Args:
        path: the SQLite file (created with its table when missing).
        lease: seconds an ``IN_PROGRESS`` record keeps others from running the same action.
        busy_timeout: seconds an operation waits for another process's write lock.
    """

    def __init__(
        self, path: str | Path, *, lease: float = 300.0, busy_timeout: float = 30.0
    ) -> None:
        self.path = str(path)
        self.lease = lease
        self._file = SqliteFile(
            self.path,
            _SCHEMA,
            busy_timeout=busy_timeout,
            label="execution record file",
            path_key="conductor.event-handlers.executions.path",
            busy_key="conductor.event-handlers.executions.path",
            error=ExecutionStoreError,
        )
        self._run = self._file.run

    def close(self) -> None:
        self._file.close()

    async def claim(self, key: ExecutionKey, action: str, owner: str) -> Claim:
        """Record the action as ``IN_PROGRESS`` for ``owner`` unless it completed or another
        consumer is running it."""

        def op(db: sqlite3.Connection) -> Claim:
            now = time.time()
            # The usual case, a first delivery, is one atomic statement; only a conflict needs
            # the read-then-update transaction below.
            inserted = db.execute(_CLAIM_INSERT, (*key.params(), action, owner, now, now)).rowcount
            if inserted == 1:
                return Claim.CLAIMED
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                f"SELECT status, updated_at, owner FROM event_executions WHERE {_KEY}",
                key.params(),
            ).fetchone()
            status, updated_at, holder = row
            if status == ExecutionStatus.COMPLETED:
                db.execute("COMMIT")
                return Claim.DONE
            if (
                status == ExecutionStatus.IN_PROGRESS
                and holder != owner
                and updated_at > now - self.lease
                and not owner_is_gone(holder)
            ):
                db.execute("COMMIT")
                return Claim.BUSY
            db.execute(
                "UPDATE event_executions SET status = 'IN_PROGRESS', action = ?, owner = ?,"
                f" attempts = attempts + 1, error = NULL, updated_at = ? WHERE {_KEY}",
                (action, owner, now, *key.params()),
            )
            db.execute("COMMIT")
            return Claim.CLAIMED

        return await self._run(op)

    async def complete(self, key: ExecutionKey, output: Any) -> None:
        """Mark a claimed action ``COMPLETED`` with its output."""
        await self._finish(key, ExecutionStatus.COMPLETED, _encode(output), None)

    async def fail(self, key: ExecutionKey, error: str, output: Any = None) -> None:
        """Mark a claimed action ``FAILED`` with the reason; a later delivery may run it again."""
        encoded = None if output is None else _encode(output)
        await self._finish(key, ExecutionStatus.FAILED, encoded, error)

    async def _finish(
        self, key: ExecutionKey, status: ExecutionStatus, output: str | None, error: str | None
    ) -> None:
        def op(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE event_executions SET status = ?, output = ?, error = ?, updated_at = ?"
                f" WHERE {_KEY}",
                (status.value, output, error, time.time(), *key.params()),
            )

        await self._run(op)

    async def skip(self, key: ExecutionKey, output: Any) -> None:
        """Record that a handler did not run for a message (``SKIPPED``), unless a completed
        record is already there."""
        await self._upsert(key, ExecutionStatus.SKIPPED, _encode(output), None)

    async def fail_handler(self, key: ExecutionKey, error: str) -> None:
        """Record that a handler could not decide on a message (its condition failed) as
        ``FAILED``, unless a completed record is already there."""
        await self._upsert(key, ExecutionStatus.FAILED, None, error)

    async def _upsert(
        self, key: ExecutionKey, status: ExecutionStatus, output: str | None, error: str | None
    ) -> None:
        def op(db: sqlite3.Connection) -> None:
            now = time.time()
            db.execute(
                "INSERT INTO event_executions (event, handler, message_id, action_index, action,"
                " status, output, error, attempts, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, NULL, ?, ?, ?, 1, ?, ?)"
                " ON CONFLICT DO UPDATE SET status = excluded.status, output = excluded.output,"
                " error = excluded.error, attempts = attempts + 1,"
                " updated_at = excluded.updated_at WHERE status != 'COMPLETED'",
                (*key.params(), status.value, output, error, now, now),
            )

        await self._run(op)

    async def records(
        self,
        *,
        event: str | None = None,
        message_id: str | None = None,
        limit: int | None = None,
    ) -> list[ExecutionRecord]:
        """Records, oldest first (the newest ``limit`` when given), optionally for one event
        and/or one message."""
        where = []
        params: list[Any] = []
        if event is not None:
            where.append("event = ?")
            params.append(event)
        if message_id is not None:
            where.append("message_id = ?")
            params.append(message_id)
        sql = f"SELECT {_COLUMNS} FROM event_executions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, message_id DESC, handler DESC, action_index DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"

        def op(db: sqlite3.Connection) -> list[ExecutionRecord]:
            return [_record(row) for row in reversed(db.execute(sql, params).fetchall())]

        return await self._run(op)

    async def get(self, key: ExecutionKey) -> ExecutionRecord | None:
        def op(db: sqlite3.Connection) -> ExecutionRecord | None:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM event_executions WHERE {_KEY}", key.params()
            ).fetchone()
            return None if row is None else _record(row)

        return await self._run(op)

    async def prune(self, older_than: float) -> int:
        """Delete records not updated for ``older_than`` seconds; return how many."""

        def op(db: sqlite3.Connection) -> int:
            cursor = db.execute(
                "DELETE FROM event_executions WHERE updated_at < ?", (time.time() - older_than,)
            )
            return int(cursor.rowcount)

        return await self._run(op)


def _record(row: tuple[Any, ...]) -> ExecutionRecord:
    event, handler, message_id, index, action, status, output, error, attempts, created, updated = (
        row
    )
    return ExecutionRecord(
        event=event,
        handler=handler,
        message_id=message_id,
        action_index=index,
        action=action,
        status=ExecutionStatus(status),
        output=None if output is None else json.loads(output),
        error=error,
        attempts=attempts,
        created_at=created,
        updated_at=updated,
    )
