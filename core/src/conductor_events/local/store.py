"""The SQLite file behind the ``local`` queue type: one table, one transaction per operation.

Statements run on the event loop's thread and waits for another process's lock are retried
asynchronously (see :mod:`conductor_events.local.sqlite_file`, which explains why).

At-least-once: a claimed row stays in the table, invisible until ``visible_at``, and is only
deleted by an ack carrying the claim's receipt. A crash at any point leaves every unacked
message to come back once its visibility timeout passes.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from conductor_events.errors import QueueError
from conductor_events.local.sqlite_file import SqliteFile

DLQ_SUFFIX = ".dlq"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    id TEXT NOT NULL,
    body BLOB NOT NULL,
    headers TEXT,
    key TEXT,
    created_at REAL NOT NULL,
    visible_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    receipt INTEGER,
    dead_letter_reason TEXT
);
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue, seq);
"""

_INSERT = (
    "INSERT INTO messages (queue, id, body, headers, key, created_at, visible_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_CLAIM = (
    "UPDATE messages SET visible_at = ?, attempts = attempts + 1, receipt = ?"
    " WHERE seq IN (SELECT seq FROM messages WHERE queue = ? AND visible_at <= ?"
    " ORDER BY seq LIMIT ?)"
    " RETURNING seq, id, body, headers, key, created_at, attempts, dead_letter_reason"
)
_DELETE_CLAIMED = "DELETE FROM messages WHERE seq = ? AND receipt = ?"
"""An ack: deletes the row only while this claim (its receipt) still holds it."""
_MOVE_TO_DLQ = (
    "INSERT INTO messages (queue, id, body, headers, key, created_at, visible_at,"
    " dead_letter_reason)"
    " SELECT queue || '.dlq', id, body, headers, key, created_at, ?, ?"
    " FROM messages WHERE seq = ?"
)


@dataclass(frozen=True, slots=True)
class Row:
    """A claimed message as stored."""

    seq: int
    id: str
    body: bytes
    headers: dict[str, str]
    key: str | None
    created_at: float
    attempts: int
    dead_letter_reason: str | None


@dataclass(frozen=True, slots=True)
class NewRow:
    """A message to insert, already encoded."""

    id: str
    body: bytes
    headers: str | None
    key: str | None
    created_at: float


def is_dead_letter_queue(queue: str) -> bool:
    return queue.endswith(DLQ_SUFFIX)


class LocalStore:
    """One connection to the queue file, used from one event loop."""

    def __init__(self, path: str, *, max_deliveries: int, busy_timeout: float) -> None:
        self.path = path
        self.max_deliveries = max_deliveries
        self._file = SqliteFile(
            path,
            _SCHEMA,
            busy_timeout=busy_timeout,
            label="local queue file",
            path_key="conductor.event-queues.local.path",
            busy_key="conductor.event-queues.local.busy-timeout",
            error=QueueError,
        )
        self._run = self._file.run

    def close(self) -> None:
        self._file.close()

    # -- operations ------------------------------------------------------------------------

    async def insert(self, queue: str, rows: Sequence[NewRow]) -> None:
        """Insert rows in one transaction: all are durable when this returns, or none."""

        def op(db: sqlite3.Connection) -> None:
            now = time.time()
            params = [(queue, r.id, r.body, r.headers, r.key, r.created_at, now) for r in rows]
            db.execute("BEGIN IMMEDIATE")
            if len(params) == 1:
                db.execute(_INSERT, params[0])
            else:
                db.executemany(_INSERT, params)
            db.execute("COMMIT")

        await self._run(op)

    async def claim(self, queue: str, limit: int, visibility: float) -> tuple[int, list[Row]]:
        """Claim up to ``limit`` visible messages in FIFO order; returns the receipt and rows.

        A message claimed past ``max_deliveries`` (its consumers kept dying or timing out) is
        moved to the dead-letter queue instead of being delivered again.
        """
        receipt = random.getrandbits(62)

        def op(db: sqlite3.Connection) -> list[Row]:
            now = time.time()
            db.execute("BEGIN IMMEDIATE")
            raw = db.execute(_CLAIM, (now + visibility, receipt, queue, now, limit)).fetchall()
            rows = []
            for seq, msg_id, body, headers, key, created, attempts, dlq_reason in raw:
                if attempts > self.max_deliveries and not is_dead_letter_queue(queue):
                    reason = (
                        f"not acknowledged after {attempts - 1} deliveries "
                        "(conductor.event-queues.local.max-deliveries)"
                    )
                    db.execute(_MOVE_TO_DLQ, (now, reason, seq))
                    db.execute("DELETE FROM messages WHERE seq = ?", (seq,))
                    continue
                rows.append(
                    Row(
                        seq,
                        msg_id,
                        body,
                        json.loads(headers) if headers else {},
                        key,
                        created,
                        attempts,
                        dlq_reason,
                    )
                )
            db.execute("COMMIT")
            rows.sort(key=lambda r: r.seq)
            return rows

        return receipt, await self._run(op)

    async def ack(self, seq: int, receipt: int) -> bool:
        """Delete a claimed message; False when the claim had expired and was taken again."""

        def op(db: sqlite3.Connection) -> bool:
            cursor = db.execute(_DELETE_CLAIMED, (seq, receipt))
            return cursor.rowcount == 1

        return await self._run(op)

    async def ack_many(self, claims: Sequence[tuple[int, int]]) -> list[bool]:
        """Delete claimed messages, given as (seq, receipt), in one transaction; one flag per
        claim, False where it had expired and was taken again."""

        def op(db: sqlite3.Connection) -> list[bool]:
            db.execute("BEGIN IMMEDIATE")
            deleted = [db.execute(_DELETE_CLAIMED, claim).rowcount == 1 for claim in claims]
            db.execute("COMMIT")
            return deleted

        return await self._run(op)

    async def nack(
        self, queue: str, seq: int, receipt: int, attempts: int, delay: float, reason: str | None
    ) -> bool:
        """Make a message visible again after ``delay``, or dead-letter it past the limit."""
        if attempts >= self.max_deliveries and not is_dead_letter_queue(queue):
            why = reason or "nacked"
            return await self.dead_letter(
                seq, receipt, f"{why} (delivery {attempts} of {self.max_deliveries})"
            )

        def op(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE messages SET visible_at = ?, receipt = NULL WHERE seq = ? AND receipt = ?",
                (time.time() + delay, seq, receipt),
            )
            return cursor.rowcount == 1

        return await self._run(op)

    async def release(self, seq: int, receipt: int) -> bool:
        """Undo a claim that was never handed to a handler: visible now, attempt not counted."""

        def op(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE messages SET visible_at = ?, receipt = NULL, attempts = attempts - 1"
                " WHERE seq = ? AND receipt = ?",
                (time.time(), seq, receipt),
            )
            return cursor.rowcount == 1

        return await self._run(op)

    async def extend(self, seq: int, receipt: int, seconds: float) -> bool:
        """Push a claimed message's visibility to ``seconds`` from now."""

        def op(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "UPDATE messages SET visible_at = ? WHERE seq = ? AND receipt = ?",
                (time.time() + seconds, seq, receipt),
            )
            return cursor.rowcount == 1

        return await self._run(op)

    async def dead_letter(self, seq: int, receipt: int, reason: str) -> bool:
        """Move a claimed message to ``<queue>.dlq`` with the reason."""

        def op(db: sqlite3.Connection) -> bool:
            db.execute("BEGIN IMMEDIATE")
            owned = db.execute(
                "SELECT 1 FROM messages WHERE seq = ? AND receipt = ?", (seq, receipt)
            ).fetchone()
            if owned:
                db.execute(_MOVE_TO_DLQ, (time.time(), reason, seq))
                db.execute("DELETE FROM messages WHERE seq = ?", (seq,))
            db.execute("COMMIT")
            return owned is not None

        return await self._run(op)

    async def depth(self, queue: str) -> int:
        """Messages in a queue, visible or not."""

        def op(db: sqlite3.Connection) -> int:
            row: Any = db.execute(
                "SELECT count(*) FROM messages WHERE queue = ?", (queue,)
            ).fetchone()
            return int(row[0])

        return await self._run(op)
