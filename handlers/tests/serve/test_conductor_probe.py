"""``serve`` checks Conductor once at start, through the real command: a warning naming the URL
and the problem when it cannot be used (the service still starts), exit status 2 with one
``error:`` line when it is required, and nothing to warn about when it answers."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from conductor_events.testing.servers import free_port
from conductor_events_handlers.testing.cli import run_cli
from conductor_events_handlers.testing.conductor_double import ConductorDouble

from .conftest import ServiceFactory, complete_handler, write_handlers, write_properties


def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}/api"


async def test_an_unreachable_conductor_is_a_warning_and_serve_goes_on(
    tmp_path: Path, double: ConductorDouble, serve: ServiceFactory
) -> None:
    url = closed_url()
    properties = write_properties(
        tmp_path / "app.properties", double, **{"conductor.server.url": url}
    )
    handlers = write_handlers(tmp_path / "handlers.json", complete_handler())
    service = serve("-c", str(properties), "--handlers", str(handlers))
    warning = await service.wait_logged("serve.conductor.unreachable")
    assert warning["level"] == "warning"
    assert warning["url"] == url
    assert warning["problem"].startswith(
        f"Conductor at {url} is not usable: GET /metadata/workflow: cannot reach Conductor at "
        f"{url}: ClientConnectorError:"
    )
    await service.wait_logged("serve.listener.connected")  # it started all the same
    service.signal(signal.SIGTERM)
    assert await service.wait_exit() == 0
    assert service.logged("serve.conductor.reachable") == []


async def test_a_conductor_that_answers_gives_no_warning(
    tmp_path: Path, double: ConductorDouble, serve: ServiceFactory
) -> None:
    properties = write_properties(tmp_path / "app.properties", double)
    handlers = write_handlers(tmp_path / "handlers.json", complete_handler())
    service = serve("-c", str(properties), "--handlers", str(handlers), "--require-conductor")
    reachable = await service.wait_logged("serve.conductor.reachable")
    assert reachable["url"] == double.url
    await service.wait_logged("serve.listener.connected")
    assert service.logged("serve.conductor.unreachable") == []
    assert [r.path for r in double.requests] == ["/api/metadata/workflow"]
    service.signal(signal.SIGTERM)
    assert await service.wait_exit() == 0


def test_require_conductor_exits_2_with_one_error_line(tmp_path: Path) -> None:
    url = closed_url()
    (tmp_path / "app.properties").write_text(
        f"conductor.server.url={url}\n"
        f"conductor.event-queues.local.path={tmp_path / 'queue.db'}\n"
        f"conductor.event-handlers.executions.path={tmp_path / 'executions.db'}\n"
    )
    write_handlers(tmp_path / "handlers.json", complete_handler())
    args = ("serve", "-c", "app.properties", "--handlers", "handlers.json")
    for extra, env in (
        (("--require-conductor",), {}),
        ((), {"CONDUCTOR_SERVER_REQUIREATSTART": "true"}),
    ):
        result = run_cli(*args, *extra, cwd=tmp_path, env=env)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error: Conductor at {url} is not usable: ")
        assert lines[0].endswith(
            "; not starting, as --require-conductor or conductor.server.require-at-start asks"
        )
        assert "Traceback" not in result.stderr


async def test_refused_credentials_are_named_without_the_token(tmp_path: Path) -> None:
    async with ConductorDouble(token="the-right-one") as double:
        properties = write_properties(
            tmp_path / "app.properties",
            double,
            **{"conductor.server.auth.token": "wr0ng-t0ken"},
        )
        write_handlers(tmp_path / "handlers.json", complete_handler())
        result = await asyncio.to_thread(
            run_cli,
            "serve",
            "-c",
            str(properties),
            "--handlers",
            "handlers.json",
            "--require-conductor",
            cwd=tmp_path,
        )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: Conductor at {double.url} refused the credentials: GET "
        f"{double.url}/metadata/workflow answered HTTP 401 to a bearer token "
        "(conductor.server.auth.token); not starting, as --require-conductor or "
        "conductor.server.require-at-start asks"
    )
    assert "wr0ng-t0ken" not in result.stderr


def test_an_unreadable_ca_file_stops_serve_with_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "app.properties").write_text(
        "conductor.server.url=https://127.0.0.1:1/api\n"
        "conductor.server.ssl-ca-cert=missing.pem\n"
        f"conductor.event-queues.local.path={tmp_path / 'queue.db'}\n"
        f"conductor.event-handlers.executions.path={tmp_path / 'executions.db'}\n"
    )
    write_handlers(tmp_path / "handlers.json", complete_handler())
    result = run_cli("serve", "-c", "app.properties", "--handlers", "handlers.json", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: conductor.server.ssl-ca-cert: cannot use missing.pem as CA certificates: "
        "No such file or directory"
    )
