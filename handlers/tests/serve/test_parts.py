"""The service's small parts on their own: backoff delays, the HTTP address option, handler
file fingerprints."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conductor_events_handlers.executions import owner_is_gone
from conductor_events_handlers.serve.backoff import Backoff
from conductor_events_handlers.serve.http import parse_address
from conductor_events_handlers.serve.reload import fingerprint


def test_backoff_doubles_up_to_the_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(initial=0.5, maximum=4.0, rng=random.Random(7))
    ceilings = []
    for _ in range(7):
        delay = backoff.next_delay()
        ceiling = backoff.ceiling()
        assert ceiling / 2 <= delay <= ceiling
        ceilings.append(ceiling)
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_backoff_jitter_spreads_listeners_that_failed_together() -> None:
    delays = {Backoff(1.0, 60.0, rng=random.Random(seed)).next_delay() for seed in range(20)}
    assert len(delays) == 20


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("9090", ("127.0.0.1", 9090)),
        (":9090", ("127.0.0.1", 9090)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("[::1]:8000", ("::1", 8000)),
    ],
)
def test_http_address(value: str, expected: tuple[str, int]) -> None:
    assert parse_address(value) == expected


@pytest.mark.parametrize("value", ["", "host:", "host:http", "1:70000"])
def test_http_address_errors(value: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_address(value)


def test_fingerprint_sees_edits_new_and_removed_files(tmp_path: Path) -> None:
    folder = tmp_path / "handlers"
    folder.mkdir()
    (folder / "a.json").write_text("[]")
    before = fingerprint([folder])
    assert fingerprint([folder]) == before
    (folder / "b.json").write_text("[]")
    with_b = fingerprint([folder])
    assert with_b != before
    stat = (folder / "a.json").stat()
    (folder / "a.json").write_text("[ ]")
    os.utime(folder / "a.json", ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same time, new size
    assert fingerprint([folder]) != with_b
    (folder / "b.json").unlink()
    assert len(fingerprint([folder])) == 1
    assert fingerprint([tmp_path / "missing.json"]) == ((str(tmp_path / "missing.json"), -1, -1),)


def test_owner_is_gone_only_for_an_exited_process_on_this_host() -> None:
    host = socket.gethostname()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert not owner_is_gone(f"{host}:{child.pid}:abcd1234")  # running
    finally:
        child.kill()
        child.wait()
    assert owner_is_gone(f"{host}:{child.pid}:abcd1234")  # exited and reaped
    assert not owner_is_gone(f"{host}:{os.getpid()}:abcd1234")  # this process
    assert not owner_is_gone(f"another-{host}:{child.pid}:abcd1234")  # another host
    assert not owner_is_gone("not an owner")
    assert not owner_is_gone(None)
