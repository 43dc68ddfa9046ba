"""The start-up probe: one request that says whether the URL, the network path and the
credentials are right, and if not, which of them is wrong, without a secret in the words."""

from __future__ import annotations

from conductor_events_handlers.client import ConductorClient
from conductor_events_handlers.testing.conductor_double import ConductorDouble

from .conftest import server_settings
from .test_client import closed_port


async def test_a_server_that_answers_passes(
    double: ConductorDouble, client: ConductorClient
) -> None:
    assert await client.probe() is None
    (request,) = double.requests
    assert (request.method, request.path, request.query) == (
        "GET",
        "/api/metadata/workflow",
        {"short": "true"},
    )


async def test_an_unreachable_server_is_named() -> None:
    url = f"http://127.0.0.1:{closed_port()}/api"
    async with ConductorClient(server_settings(url)) as client:
        problem = await client.probe()
    assert problem is not None
    assert problem.startswith(
        f"Conductor at {url} is not usable: GET /metadata/workflow: cannot reach Conductor "
        f"at {url}: ClientConnectorError:"
    )


async def test_refused_credentials_are_described_without_the_secret() -> None:
    async with ConductorDouble(token="right-token") as double:
        settings = server_settings(double.url, auth={"token": "wrong-token"})
        async with ConductorClient(settings) as client:
            problem = await client.probe()
    assert problem == (
        f"Conductor at {double.url} refused the credentials: GET {double.url}/metadata/workflow "
        "answered HTTP 401 to a bearer token (conductor.server.auth.token)"
    )


async def test_a_refused_application_key_names_the_key_not_the_secret() -> None:
    async with ConductorDouble(key_id="app", key_secret="right") as double:
        settings = server_settings(double.url, auth={"key": "app", "secret": "s3cret"})
        async with ConductorClient(settings) as client:
            problem = await client.probe()
    assert problem == (
        f"Conductor at {double.url} refused the credentials: POST {double.url}/token answered "
        "HTTP 401 to the application key 'app' (conductor.server.auth.key)"
    )


async def test_a_wrong_base_path_is_pointed_out(double: ConductorDouble) -> None:
    url = double.url.removesuffix("/api")
    async with ConductorClient(server_settings(url)) as client:
        problem = await client.probe()
    assert problem == (
        f"Conductor at {url} has no REST API there: GET {url}/metadata/workflow answered "
        "HTTP 404; check the base path of conductor.server.url (Conductor's ends in /api)"
    )


async def test_the_probe_is_one_request_even_when_the_server_fails(
    double: ConductorDouble, client: ConductorClient
) -> None:
    double.inject(503, times=5, path="^/api/metadata/")
    problem = await client.probe()
    assert problem == (
        f"Conductor at {double.url} is not usable: GET /metadata/workflow: HTTP 503: "
        "injected failure"
    )
    assert len(double.requests) == 1
