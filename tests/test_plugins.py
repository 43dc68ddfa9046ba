"""Plugin discovery, isolation of broken plugins, env switches, and per-type dispatch."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

import conductor_events.local.plugin
from conductor_events.config import ConfigProblem, Configuration, load_configuration
from conductor_events.errors import PluginError, UnknownQueueTypeError
from conductor_events.event_queues import EventQueues
from conductor_events.messages import Message
from conductor_events.plugins import BLOCKED, FAILED, LOADED, PluginHost
from tests.support.cli import run_cli
from tests.support.distributions import entry_points_under, make_distribution

GOOD_PLUGIN = """
from conductor_events import hookimpl
from conductor_events.config import QueueSettings
from conductor_events.backend import QueueType

class Settings(QueueSettings):
    pass

def connect(settings):
    raise AssertionError("connect is only called on first use")

@hookimpl
def register_queue_types(register):
    register(QueueType(name="{type}", settings=Settings, connect=connect))
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path where tests install fake distributions."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in [m for m in sys.modules if m.startswith("fake_")]:
        del sys.modules[name]


def host_for(site: Path, **kwargs: object) -> PluginHost:
    return PluginHost(entry_points_under(site), **kwargs)  # type: ignore[arg-type]


def install(site: Path, name: str, source: str, version: str = "1.0.0") -> None:
    module = f"fake_{name}"
    make_distribution(site, f"fake-{name}", version, {name: module}, {module: source})


def by_name(host: PluginHost) -> dict[str, dict[str, object]]:
    return {r.name: r.as_json() for r in host.records()}


def test_discovered_plugin_reports_distribution_version_types_and_hooks(site: Path) -> None:
    install(site, "alpha", GOOD_PLUGIN.format(type="alpha"), version="2.5.1")
    record = by_name(host_for(site, environ={}))["alpha"]
    assert record == {
        "name": "alpha",
        "entry_point": "fake_alpha",
        "distribution": "fake-alpha",
        "version": "2.5.1",
        "queue_types": ["alpha"],
        "hooks": ["register_queue_types"],
        "status": LOADED,
        "error": None,
    }


def test_plugin_raising_on_import_is_reported_and_the_rest_load(site: Path) -> None:
    install(site, "broken", "raise RuntimeError('missing credentials module')\n", "0.9.0")
    install(site, "alpha", GOOD_PLUGIN.format(type="alpha"))
    with capture_logs() as logs:
        host = host_for(site, environ={})
        records = by_name(host)
    assert records["broken"]["status"] == FAILED
    assert records["broken"]["error"] == "import failed: RuntimeError: missing credentials module"
    assert records["broken"]["distribution"] == "fake-broken"
    assert records["broken"]["version"] == "0.9.0"
    assert records["alpha"]["status"] == LOADED
    assert host.queue_type("alpha") is not None
    assert [e["plugin"] for e in logs if e["event"] == "plugins.load.failed"] == ["broken"]


def test_misspelled_hookimpl_is_caught_by_check_pending(site: Path) -> None:
    install(
        site,
        "typo",
        "from conductor_events import hookimpl\n"
        "@hookimpl\n"
        "def register_queue_type(register):\n"
        "    pass\n",
    )
    record = by_name(host_for(site, environ={}))["typo"]
    assert record["status"] == FAILED
    assert "unknown hook 'register_queue_type'" in str(record["error"])


def test_hookimpl_with_wrong_argument_names_fails(site: Path) -> None:
    install(
        site,
        "args",
        "from conductor_events import hookimpl\n"
        "@hookimpl\n"
        "def register_queue_types(registrar):\n"
        "    pass\n",
    )
    record = by_name(host_for(site, environ={}))["args"]
    assert record["status"] == FAILED
    assert "registrar" in str(record["error"])


def test_register_hook_that_raises_is_isolated(site: Path) -> None:
    install(
        site,
        "boom",
        "from conductor_events import hookimpl\n"
        "@hookimpl\n"
        "def register_queue_types(register):\n"
        "    raise ValueError('no region')\n",
    )
    install(site, "alpha", GOOD_PLUGIN.format(type="alpha"))
    host = host_for(site, environ={})
    records = by_name(host)
    assert records["boom"]["error"] == "register_queue_types failed: ValueError: no region"
    assert list(host.queue_types()) == ["alpha"]


def test_strict_mode_fails_fast_naming_the_plugin(site: Path) -> None:
    install(site, "broken", "import no_such_sdk\n", "0.9.0")
    with pytest.raises(PluginError, match=r"plugin broken \(fake-broken 0.9.0\) failed to load"):
        host_for(site, environ={"CONDUCTOR_EVENTS_STRICT_PLUGINS": "1"}).records()
    with pytest.raises(PluginError, match="No module named 'no_such_sdk'"):
        host_for(site, strict=True, environ={}).records()


def test_block_list_and_allow_list_by_entry_point_name(site: Path) -> None:
    install(site, "alpha", GOOD_PLUGIN.format(type="alpha"))
    install(site, "beta", GOOD_PLUGIN.format(type="beta"))
    blocked = host_for(site, environ={"CONDUCTOR_EVENTS_BLOCK_PLUGINS": "beta"})
    assert by_name(blocked)["beta"]["status"] == BLOCKED
    assert by_name(blocked)["beta"]["error"] == "listed in CONDUCTOR_EVENTS_BLOCK_PLUGINS"
    assert list(blocked.queue_types()) == ["alpha"]
    allowed = host_for(site, environ={"CONDUCTOR_EVENTS_PLUGINS": "beta"})
    assert by_name(allowed)["alpha"]["error"] == "not listed in CONDUCTOR_EVENTS_PLUGINS"
    assert list(allowed.queue_types()) == ["beta"]
    nothing = host_for(site, environ={"CONDUCTOR_EVENTS_PLUGINS": ""})
    assert dict(nothing.queue_types()) == {}


def test_two_plugins_claiming_one_queue_type_is_a_start_up_error(site: Path) -> None:
    install(site, "first", GOOD_PLUGIN.format(type="orders"), "1.0.0")
    install(site, "second", GOOD_PLUGIN.format(type="orders"), "2.0.0")
    with pytest.raises(PluginError) as caught:
        host_for(site, environ={}).records()
    message = str(caught.value)
    assert "queue type 'orders' is registered by two plugins" in message
    assert "fake-first 1.0.0 (entry point first)" in message
    assert "fake-second 2.0.0 (entry point second)" in message


def test_trace_switch_logs_every_hook_call(site: Path) -> None:
    install(site, "alpha", GOOD_PLUGIN.format(type="alpha"))
    with capture_logs() as logs:
        host = host_for(site, environ={"CONDUCTOR_EVENTS_TRACE_PLUGINS": "1"})
        load_configuration([], host, {})
    calls = [(e["hook"], e["plugin"]) for e in logs if e["event"] == "plugins.trace.call"]
    assert calls == [("register_queue_types", "alpha")]
    results = [e for e in logs if e["event"] == "plugins.trace.result"]
    assert results[0]["result"] == "None"
    silent = host_for(site, environ={})
    with capture_logs() as quiet:
        silent.records()
    assert not [e for e in quiet if e["event"].startswith("plugins.trace")]


# -- the hooks ---------------------------------------------------------------------------------


def test_hook_register_queue_types(plugins: PluginHost) -> None:
    registered = plugins.queue_type("local")
    assert registered is not None
    assert registered.queue_type.settings.__name__ == "LocalQueueSettings"
    assert registered.plugin.distribution == "conductor-events"


class CrossChecker:
    """A plugin whose validate_config hook flags a combination of keys."""

    @staticmethod
    @conductor_events.hookimpl
    def validate_config(config: Configuration) -> list[ConfigProblem]:
        settings = config.settings("local")
        if settings is not None and getattr(settings, "max_deliveries", 0) > 10:
            key = "conductor.event-queues.local.max-deliveries"
            return [config.problem(key, "more than 10 deliveries hides poison messages")]
        return []


def test_hook_validate_config(plugins: PluginHost, write_properties: Callable[..., Path]) -> None:
    plugins.add_plugin(CrossChecker(), "checker", distribution="acme-checks", version="3.1")
    file = write_properties("\nconductor.event-queues.local.max-deliveries=50\n")
    (problem,) = load_configuration([file], plugins, {}).problems
    assert str(problem) == (
        f"{file}:2: conductor.event-queues.local.max-deliveries: more than 10 deliveries "
        "hides poison messages (plugin acme-checks 3.1)"
    )


class MinimumChecker:
    """A plugin that wants at least 10 deliveries, and a local queue path set explicitly."""

    @staticmethod
    @conductor_events.hookimpl
    def validate_config(config: Configuration) -> list[ConfigProblem]:
        settings = config.settings("local")
        if settings is None:
            return []
        problems = []
        if getattr(settings, "max_deliveries", 0) < 10:
            key = "conductor.event-queues.local.max-deliveries"
            problems.append(config.problem(key, "fewer than 10 deliveries"))
        if "conductor.event-queues.local.path" not in config.entries:
            problems.append(config.problem("conductor.event-queues.local.path", "is missing"))
        return problems


def test_plugin_checks_run_on_a_section_with_an_invalid_value(
    plugins: PluginHost, write_properties: Callable[..., Path]
) -> None:
    """The checks see the section with the invalid value set aside; what they find on the key
    the model already reported is not reported twice; a missing key is located at the key of
    its section that is set."""
    plugins.add_plugin(MinimumChecker(), "checker", distribution="acme-checks", version="3.1")
    file = write_properties(
        "conductor.event-queues.local.visibility-timeout=-5s\n"
        "conductor.event-queues.local.max-deliveries=abc\n"
    )
    assert [str(p) for p in load_configuration([file], plugins, {}).problems] == [
        f"{file}:1: conductor.event-queues.local.visibility-timeout: invalid value '-5s': "
        "duration '-5s' must not be negative (plugin conductor-events 0.1.0)",
        f"{file}:1: conductor.event-queues.local.path: is missing (plugin acme-checks 3.1)",
        f"{file}:2: conductor.event-queues.local.max-deliveries: invalid value 'abc': Input "
        "should be a valid integer, unable to parse string as an integer "
        "(plugin conductor-events 0.1.0)",
    ]


# -- a queue type whose plugin is installed but not loaded --------------------------------------

SWITCHES = [
    pytest.param(
        {"CONDUCTOR_EVENTS_BLOCK_PLUGINS": "alpha"},
        "which is blocked by CONDUCTOR_EVENTS_BLOCK_PLUGINS; remove 'alpha' from it to use it",
        id="block-list",
    ),
    pytest.param(
        {"CONDUCTOR_EVENTS_PLUGINS": "beta"},
        "which is not in CONDUCTOR_EVENTS_PLUGINS; add 'alpha' to it to use it",
        id="allow-list",
    ),
]


@pytest.mark.parametrize(("environ", "why"), SWITCHES)
async def test_a_blocked_plugins_type_names_the_plugin_and_the_switch(
    site: Path, write_properties: Callable[..., Path], environ: dict[str, str], why: str
) -> None:
    install(site, "alpha", GOOD_PLUGIN.format(type="alpha"), "2.5.0")
    install(site, "beta", GOOD_PLUGIN.format(type="beta"))
    host = host_for(site, environ=environ)
    file = write_properties(
        "conductor.event-queues.beta.enabled=true\nconductor.event-queues.alpha.enabled=true\n"
    )
    blocked = f"queue type 'alpha' is provided by plugin 'alpha' (fake-alpha 2.5.0), {why}"
    problems = load_configuration([file], host, {}).problems
    assert [str(p) for p in problems] == [
        f"{file}:2: conductor.event-queues.alpha.enabled: {blocked} (plugin conductor-events 0.1.0)"
    ]
    async with EventQueues.from_files([file], plugins=host, environ={}) as queues:
        with pytest.raises(UnknownQueueTypeError) as published:
            await queues.publish("alpha:orders", [Message({"n": 1})])
        with pytest.raises(UnknownQueueTypeError) as subscribed:
            await queues.subscribe("alpha:orders")
    assert str(published.value) == str(subscribed.value) == f"sink 'alpha:orders': {blocked}"


@pytest.mark.parametrize(
    ("env", "plugins", "why"),
    [
        pytest.param(
            {"CONDUCTOR_EVENTS_BLOCK_PLUGINS": "sqs"},
            None,
            "which is blocked by CONDUCTOR_EVENTS_BLOCK_PLUGINS; remove 'sqs' from it to use it",
            id="block-list",
        ),
        pytest.param(
            {},
            "local",
            "which is not in CONDUCTOR_EVENTS_PLUGINS; add 'sqs' to it to use it",
            id="allow-list",
        ),
    ],
)
def test_commands_name_the_switch_that_blocks_an_installed_plugin(
    tmp_path: Path, env: dict[str, str], plugins: str | None, why: str
) -> None:
    version = importlib.metadata.version("conductor-events-sqs")
    blocked = (
        f"queue type 'sqs' is provided by plugin 'sqs' (conductor-events-sqs {version}), {why}"
    )
    config = tmp_path / "app.properties"
    config.write_text(
        f"conductor.event-queues.local.path={tmp_path / 'q.db'}\n"
        "conductor.event-queues.sqs.enabled=true\n"
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("-c", str(config), *args, cwd=tmp_path, env=env, plugins=plugins)

    checked = run("config", "check")
    assert checked.returncode == 2
    assert checked.stdout.splitlines() == [
        f"{config}:2: conductor.event-queues.sqs.enabled: {blocked} (plugin conductor-events 0.1.0)"
    ]
    published = run("publish", "sqs:orders")
    assert published.returncode == 1, published.stderr
    assert json.loads(published.stdout)["reasonForIncompletion"] == f"sink 'sqs:orders': {blocked}"
    listened = run("listen", "sqs:orders", "--timeout", "1")
    assert listened.returncode == 2
    assert f"error: sink 'sqs:orders': {blocked}" in listened.stderr.splitlines()


# -- dispatch ----------------------------------------------------------------------------------


class CountingType:
    """A plugin whose client records every call that reaches it."""

    def __init__(self) -> None:
        self.connects = 0

    @conductor_events.hookimpl
    def register_queue_types(self, register: Callable[..., None]) -> None:
        from conductor_events_memory import MemoryClient, MemorySettings

        from conductor_events.backend import QueueType

        def connect(settings: MemorySettings) -> MemoryClient:
            self.connects += 1
            return MemoryClient(settings)

        register(QueueType(name="memory", settings=MemorySettings, connect=connect))


async def test_publish_to_one_type_never_reaches_another_and_is_resolved_once(
    plugins: PluginHost, write_properties: Callable[..., Path], tmp_path: Path
) -> None:
    counting = CountingType()
    plugins.add_plugin(counting, "memory")
    file = write_properties(
        f"conductor.event-queues.local.path={tmp_path / 'q.db'}\n"
        "conductor.event-queues.memory.enabled=true\n"
    )
    async with EventQueues.from_files([file], plugins=plugins, environ={}) as queues:
        first = queues.resolve("local:orders")
        await queues.publish("local:orders", [Message({"n": 1})])
        assert counting.connects == 0
        plugins.queue_type = None  # type: ignore[assignment,method-assign]
        assert queues.resolve("local:orders") is first  # cached: the host is not asked again
        await queues.publish("local:orders", [Message({"n": 2})])
        assert counting.connects == 0


def test_loading_every_installed_plugin_imports_no_sdk() -> None:
    code = (
        "import json, sys\n"
        "from conductor_events.plugins import PluginHost\n"
        "host = PluginHost(environ={})\n"
        "records = host.records()\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'boto3', 'botocore', 'aiokafka', 'azure', 'kafka'})\n"
        "print(json.dumps({'plugins': [r.name for r in records], 'heavy': heavy}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    result = json.loads(out.stdout)
    assert "local" in result["plugins"]
    assert result["heavy"] == []
