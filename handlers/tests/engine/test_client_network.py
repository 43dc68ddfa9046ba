"""The network path to Conductor: an HTTP proxy (configured, or from the environment) and a
private certificate authority for an ``https://`` server, each against a real server on
127.0.0.1 (the API double, a tiny forward proxy, a TLS double with a certificate from a test
CA)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from conductor_events_handlers.client import ConductorClient, ConductorError, ConductorSetupError
from conductor_events_handlers.testing.conductor_double import ConductorDouble

from .conftest import server_settings
from .forward_proxy import ForwardProxy
from .test_client import closed_port

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
async def proxy() -> AsyncIterator[ForwardProxy]:
    async with ForwardProxy() as server:
        yield server


async def test_requests_go_through_the_configured_proxy(
    double: ConductorDouble, proxy: ForwardProxy
) -> None:
    workflow_id = double.start_workflow("doug")
    async with ConductorClient(server_settings(double.url, proxy=proxy.url)) as client:
        assert (await client.get_workflow(workflow_id))["workflowId"] == workflow_id
    assert proxy.request_lines == [
        f"GET {double.url}/workflow/{workflow_id}?includeTasks=true HTTP/1.1"
    ]


async def test_the_environment_proxy_applies_unless_no_proxy_names_the_host(
    double: ConductorDouble, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with ConductorClient(server_settings(double.url)) as client:
        assert await client.get_task("t1") is None
    assert proxy.request_lines == [f"GET {double.url}/tasks/t1 HTTP/1.1"]
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with ConductorClient(server_settings(double.url)) as client:
        assert await client.get_task("t2") is None
    assert len(proxy.request_lines) == 1  # the second request went straight to the server
    assert double.requests[-1].path == "/api/tasks/t2"


async def test_an_unreachable_environment_proxy_is_pointed_out(
    double: ConductorDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = closed_port()
    monkeypatch.setenv("HTTP_PROXY", f"http://proxy-user:pa55word@127.0.0.1:{port}")
    async with ConductorClient(server_settings(double.url, retries=0)) as client:
        with pytest.raises(ConductorError) as raised:
            await client.get_task("t")
    assert raised.value.message.startswith(
        f"GET /tasks/t: cannot reach Conductor at {double.url} through the proxy "
        f"http://127.0.0.1:{port} (from the environment): ClientProxyConnectionError:"
    )
    assert "pa55word" not in raised.value.message
    assert double.requests == []


async def test_an_unreachable_proxy_is_named_without_its_password(
    double: ConductorDouble,
) -> None:
    port = closed_port()
    settings = server_settings(
        double.url, proxy=f"http://user:pa55word@127.0.0.1:{port}", retries=0
    )
    async with ConductorClient(settings) as client:
        with pytest.raises(ConductorError) as raised:
            await client.get_task("t")
    assert raised.value.transient is True
    assert raised.value.message.startswith(
        f"GET /tasks/t: cannot reach Conductor at {double.url} through the proxy "
        f"http://127.0.0.1:{port}: ClientProxyConnectionError:"
    )
    assert "pa55word" not in raised.value.message
    assert "pa55word" not in repr(settings)
    assert double.requests == []


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
async def tls_double(ca: trustme.CA) -> AsyncIterator[ConductorDouble]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    async with ConductorDouble(ssl_context=context) as server:
        server.register_workflow("doug", ["task_1_ref"])
        yield server


async def test_a_private_ca_file_is_trusted(tls_double: ConductorDouble, ca_file: Path) -> None:
    assert tls_double.url.startswith("https://127.0.0.1:")
    settings = server_settings(tls_double.url, ssl_ca_cert=str(ca_file))
    async with ConductorClient(settings) as client:
        workflow_id = await client.start_workflow({"name": "doug"})
    assert workflow_id in tls_double.workflows


async def test_without_the_ca_the_certificate_is_refused(tls_double: ConductorDouble) -> None:
    async with ConductorClient(server_settings(tls_double.url, retries=0)) as client:
        with pytest.raises(ConductorError) as raised:
            await client.get_task("t")
    assert "CERTIFICATE_VERIFY_FAILED" in raised.value.message
    assert tls_double.requests == []


async def test_verification_can_be_turned_off(tls_double: ConductorDouble) -> None:
    async with ConductorClient(server_settings(tls_double.url, verify_ssl=False)) as client:
        assert await client.get_task("t") is None


def test_an_unreadable_ca_file_is_a_setup_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConductorSetupError) as raised:
        ConductorClient(server_settings("https://127.0.0.1:1/api", ssl_ca_cert=str(missing)))
    assert str(raised.value) == (
        f"conductor.server.ssl-ca-cert: cannot use {missing} as CA certificates: "
        "No such file or directory"
    )


def test_a_proxy_must_be_an_http_url() -> None:
    with pytest.raises(ValueError, match="proxy must start with http:// or https://"):
        server_settings("http://127.0.0.1/api", proxy="127.0.0.1:3128")
