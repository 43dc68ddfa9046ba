"""Raw ``sqlite3`` baselines: the local queue's work done directly, with no project code.

Same file settings as the local queue (WAL, ``synchronous=NORMAL``), a table of the same shape
(one table, ``seq`` primary key, an index on ``(queue, seq)``), the same 1 KiB JSON payloads,
encoded per message and with a fresh UUID per message, exactly as a publish does. What the
local queue adds on top (messages, settlement state, error handling, the asyncio API) is what
the ratio to these figures measures.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
import uuid
from pathlib import Path

from bench.framework import RunContext, Sample
from bench.payloads import encode, json_payload

QUEUE = "bench"

SCHEMA = """
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

INSERT = (
    "INSERT INTO messages (queue, id, body, headers, key, created_at, visible_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
CLAIM = (
    "UPDATE messages SET visible_at = ?, attempts = attempts + 1, receipt = ?"
    " WHERE seq IN (SELECT seq FROM messages WHERE queue = ? AND visible_at <= ?"
    " ORDER BY seq LIMIT ?)"
    " RETURNING seq, id, body, headers, key, created_at, attempts"
)
DELETE = "DELETE FROM messages WHERE seq = ? AND receipt = ?"


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the local queue's settings, in autocommit mode."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.executescript(SCHEMA)
    return db


def _row(payload: object) -> tuple[str, str, bytes, None, None, float, float]:
    now = time.time()
    return (QUEUE, str(uuid.uuid4()), encode(payload), None, None, now, now)


def prefill(db: sqlite3.Connection, count: int, shape: str, batch: int = 1000) -> None:
    """Insert ``count`` messages (untimed set-up for the consume baseline)."""
    payload = json_payload(shape=shape)
    for start in range(0, count, batch):
        rows = [_row(payload) for _ in range(min(batch, count - start))]
        db.execute("BEGIN IMMEDIATE")
        db.executemany(INSERT, rows)
        db.execute("COMMIT")


def insert_batches(batch: int, ctx: RunContext) -> Sample:
    """``batch`` inserts per transaction, one ``executemany`` each."""
    db = connect(ctx.workdir / "raw.db")
    payload = json_payload(shape=ctx.options.payload)
    done = 0
    start = time.perf_counter()
    while done < ctx.count and not ctx.expired():
        rows = [_row(payload) for _ in range(batch)]
        db.execute("BEGIN IMMEDIATE")
        db.executemany(INSERT, rows)
        db.execute("COMMIT")
        done += batch
    seconds = time.perf_counter() - start
    db.close()
    return Sample(done, seconds)


def insert_each_committed(ctx: RunContext) -> Sample:
    """One transaction, so one commit, per insert."""
    db = connect(ctx.workdir / "raw.db")
    payload = json_payload(shape=ctx.options.payload)
    done = 0
    start = time.perf_counter()
    while done < ctx.count and not ctx.expired():
        db.execute("BEGIN IMMEDIATE")
        db.execute(INSERT, _row(payload))
        db.execute("COMMIT")
        done += 1
    seconds = time.perf_counter() - start
    db.close()
    return Sample(done, seconds)


def claim_then_delete(ctx: RunContext, claim: int = 100) -> Sample:
    """Claim ``claim`` rows in one ``UPDATE ... RETURNING`` transaction, decode each body,
    then delete each row in its own (autocommit) transaction, as an ack would."""
    return _claim_and_delete(ctx, claim, batched=False)


def claim_then_delete_batch(ctx: RunContext, claim: int = 100) -> Sample:
    """Claim ``claim`` rows as above, decode each body, then delete them all in one
    transaction, as ``ack_many`` does."""
    return _claim_and_delete(ctx, claim, batched=True)


def _claim_and_delete(ctx: RunContext, claim: int, *, batched: bool) -> Sample:
    db = connect(ctx.workdir / "raw.db")
    prefill(db, ctx.count, ctx.options.payload)
    done = 0
    start = time.perf_counter()
    while done < ctx.count and not ctx.expired():
        receipt = random.getrandbits(62)
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        rows = db.execute(CLAIM, (now + 60.0, receipt, QUEUE, now, claim)).fetchall()
        db.execute("COMMIT")
        if not rows:
            break
        payloads = [json.loads(row[2]) for row in rows]  # held until acked, as a consumer's
        if batched:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(DELETE, [(row[0], receipt) for row in rows])
            db.execute("COMMIT")
        else:
            for row in rows:
                db.execute(DELETE, (row[0], receipt))
        done += len(payloads)
    seconds = time.perf_counter() - start
    db.close()
    return Sample(done, seconds)
