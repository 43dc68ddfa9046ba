"""``serve`` refuses to start, with exit status 2 and one line per problem, when it has no
handlers, a handler file has problems, or an option is wrong."""

from __future__ import annotations

from pathlib import Path

from conductor_events_handlers.testing.cli import run_cli


def test_no_handler_files(tmp_path: Path) -> None:
    result = run_cli("serve", cwd=tmp_path)
    assert result.returncode == 2
    assert "error: no handler files: give --handlers PATH" in result.stderr


def test_a_broken_handler_file(tmp_path: Path) -> None:
    (tmp_path / "handlers.json").write_text('[{"name": "x"')
    result = run_cli("serve", "--handlers", "handlers.json", cwd=tmp_path)
    assert result.returncode == 2
    assert "error: handlers.json:" in result.stderr
    assert "not JSON" in result.stderr


def test_a_handler_on_a_queue_type_that_is_not_installed(tmp_path: Path) -> None:
    (tmp_path / "handlers.json").write_text(
        '{"name": "x", "event": "nosuch:orders", "active": true,'
        ' "actions": [{"action": "complete_task", "complete_task":'
        ' {"workflowId": "w", "taskRefName": "t"}}]}'
    )
    result = run_cli("serve", "--handlers", "handlers.json", cwd=tmp_path)
    assert result.returncode == 2
    assert "this event cannot be consumed here" in result.stderr


def test_a_bad_http_address(tmp_path: Path) -> None:
    result = run_cli("serve", "--handlers", "h.json", "--http", "host:http", cwd=tmp_path)
    assert result.returncode == 2
    assert "expected HOST:PORT or PORT" in result.stderr
