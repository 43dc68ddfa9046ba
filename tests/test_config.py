"""Configuration: properties grammar, relaxed binding, env overrides, durations, error lines."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from conductor_events.config import (
    Configuration,
    PositiveMillis,
    PositiveSeconds,
    parse_duration,
)
from conductor_events.config.properties import parse_properties
from conductor_events.config.show import SOURCE_COLUMN_CAP, effective_entries, show_lines
from conductor_events.errors import ConfigError
from conductor_events.local.settings import LocalQueueSettings
from conductor_events.plugins import PluginHost

Load = Callable[..., Configuration]
Write = Callable[..., Path]


def local(config: Configuration) -> LocalQueueSettings:
    settings = config.settings("local")
    assert isinstance(settings, LocalQueueSettings)
    return settings


# -- the properties grammar --------------------------------------------------------------------


def test_every_separator_comment_continuation_and_escape_form() -> None:
    text = (
        "# a comment\n"
        "! another comment\n"
        "\n"
        "a.equals = one\n"
        "a.colon: two\n"
        "a.space three\n"
        "a.continued = first \\\n"
        "    second\n"
        "a.unicode = caf\\u00e9\n"
        "a.equals = last wins\n"
    )
    entries = {e.key: e for e in parse_properties(text, "app.properties")}
    assert entries["a.colon"].value == "two"
    assert entries["a.space"].value == "three"
    assert entries["a.continued"].value == "first second"
    assert entries["a.unicode"].value == "café"
    assert entries["a.equals"].value == "last wins"
    assert [str(e.source) for e in parse_properties(text, "app.properties")] == [
        "app.properties:4",
        "app.properties:5",
        "app.properties:6",
        "app.properties:7",
        "app.properties:9",
        "app.properties:10",
    ]


def test_bad_unicode_escape_names_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^bad\.properties:2: cannot parse properties"):
        parse_properties("a=1\nb=\\uZZZZ\n", "bad.properties")


def test_missing_file_is_one_clear_line(load: Load, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.properties: configuration file not found"):
        load(tmp_path / "nope.properties")


# -- binding -----------------------------------------------------------------------------------


def test_kebab_and_camel_case_bind_to_the_same_field(load: Load, write_properties: Write) -> None:
    kebab = load(write_properties("conductor.event-queues.local.max-deliveries=7\n"))
    camel = load(write_properties("conductor.eventQueues.local.maxDeliveries=8\n"))
    assert local(kebab).max_deliveries == 7
    assert local(camel).max_deliveries == 8
    assert "conductor.event-queues.local.max-deliveries" in camel.entries


def test_later_files_override_earlier_ones(load: Load, write_properties: Write) -> None:
    first = write_properties(
        "conductor.event-queues.local.max-deliveries=2\nconductor.event-queues.local.path=a.db\n"
    )
    second = write_properties("conductor.event-queues.local.max-deliveries=9\n")
    config = load(first, second)
    assert local(config).max_deliveries == 9
    assert local(config).path == "a.db"
    assert str(config.source_of("conductor.event-queues.local.max-deliveries")) == f"{second}:1"


def test_env_override_reaches_the_same_field_and_wins(load: Load, write_properties: Write) -> None:
    file = write_properties("conductor.event-queues.local.max-deliveries=2\n")
    config = load(file, environ={"CONDUCTOR_EVENTQUEUES_LOCAL_MAXDELIVERIES": "11"})
    assert local(config).max_deliveries == 11
    source = config.source_of("conductor.event-queues.local.max-deliveries")
    assert str(source) == "env CONDUCTOR_EVENTQUEUES_LOCAL_MAXDELIVERIES"


def test_env_default_queue_type(load: Load) -> None:
    config = load(environ={"CONDUCTOR_DEFAULTEVENTQUEUE_TYPE": "local"})
    assert config.default_queue.type == "local"


def test_unrelated_conductor_env_vars_are_ignored(load: Load) -> None:
    config = load(
        environ={"CONDUCTOR_DB_TYPE": "postgres", "CONDUCTOR_EVENTQUEUES_LOCAL_NOPE": "1"}
    )
    assert config.problems == []


def test_conductor_server_keys_are_ignored(load: Load, write_properties: Write) -> None:
    file = write_properties(
        "conductor.db.type=postgres\n"
        "conductor.app.event-processor-thread-count=4\n"
        "conductor.event-queues.default.enabled=true\n"
        "spring.datasource.url=jdbc:x\n"
    )
    assert load(file).problems == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100ms", timedelta(milliseconds=100)),
        ("60s", timedelta(seconds=60)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("PT1M30S", timedelta(seconds=90)),
        ("250", timedelta(milliseconds=250)),
    ],
)
def test_spring_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text, "ms") == expected


class _Timeouts(BaseModel):
    wait: PositiveMillis
    limit: PositiveSeconds


@pytest.mark.parametrize("field", ["wait", "limit"])
@pytest.mark.parametrize("zero", ["0", "0s", "PT0S", 0])
def test_positive_durations_refuse_zero(field: str, zero: object) -> None:
    values: dict[str, object] = {"wait": "1", "limit": "1", field: zero}
    with pytest.raises(ValidationError, match="must be more than 0"):
        _Timeouts.model_validate(values)


def test_positive_durations_keep_their_units() -> None:
    timeouts = _Timeouts.model_validate({"wait": "250", "limit": 3})
    assert timeouts.wait == timedelta(milliseconds=250)
    assert timeouts.limit == timedelta(seconds=3)
    assert timeouts.model_dump(mode="json") == {"wait": "250ms", "limit": "3s"}


def test_bare_number_takes_the_keys_unit(load: Load, write_properties: Write) -> None:
    config = load(
        write_properties(
            "conductor.event-queues.local.visibility-timeout=30\n"
            "conductor.event-queues.local.poll-interval=30\n"
        )
    )
    assert local(config).visibility_timeout == timedelta(seconds=30)
    assert local(config).poll_interval == timedelta(milliseconds=30)


# -- errors ------------------------------------------------------------------------------------


def test_bad_values_give_exact_error_lines(load: Load, write_properties: Write) -> None:
    file = write_properties(
        "# local queue\n"
        "conductor.event-queues.local.max-deliveries=abc\n"
        "conductor.event-queues.local.visibility-timeout=-5s\n"
        "conductor.event-queues.local.poll-interval=5 parsecs\n"
    )
    lines = [str(p) for p in load(file).errors]
    assert lines == [
        f"{file}:2: conductor.event-queues.local.max-deliveries: invalid value 'abc': "
        "Input should be a valid integer, unable to parse string as an integer "
        "(plugin conductor-events 0.1.0)",
        f"{file}:3: conductor.event-queues.local.visibility-timeout: invalid value '-5s': "
        "duration '-5s' must not be negative (plugin conductor-events 0.1.0)",
        f"{file}:4: conductor.event-queues.local.poll-interval: invalid value '5 parsecs': "
        "unknown duration unit 'parsecs' in '5 parsecs' (use ns, us, ms, s, m, h or d) "
        "(plugin conductor-events 0.1.0)",
    ]


def test_range_violation_names_the_bound(load: Load, write_properties: Write) -> None:
    file = write_properties("conductor.event-queues.local.max-deliveries=0\n")
    (problem,) = load(file).errors
    assert str(problem) == (
        f"{file}:1: conductor.event-queues.local.max-deliveries: invalid value '0': "
        "Input should be greater than or equal to 1 (plugin conductor-events 0.1.0)"
    )


def test_unknown_key_suggests_the_right_one(load: Load, write_properties: Write) -> None:
    file = write_properties(
        "conductor.default-event-queue.tpye=local\nconductor.event-queues.local.max-delivery=3\n"
    )
    config = load(file)
    assert [str(p) for p in config.problems] == [
        f"{file}:1: conductor.default-event-queue.tpye: unknown property of section "
        "conductor.default-event-queue; did you mean 'conductor.default-event-queue.type'? "
        "(plugin conductor-events 0.1.0)",
        f"{file}:2: conductor.event-queues.local.max-delivery: unknown property of section "
        "conductor.event-queues.local; did you mean "
        "'conductor.event-queues.local.max-deliveries'? (plugin conductor-events 0.1.0)",
    ]
    assert config.errors == []  # unknown keys stop `config check`, and only warn at start-up
    assert len(config.warnings) == 2


def test_section_of_an_uninstalled_type_names_the_package(
    load: Load, write_properties: Write
) -> None:
    file = write_properties(
        "conductor.event-queues.sqs.enabled=true\nconductor.event-queues.sqs.batch-size=10\n"
    )
    (problem,) = load(file).problems
    assert str(problem) == (
        f"{file}:1: conductor.event-queues.sqs.enabled: no installed plugin provides queue "
        "type 'sqs'; install conductor-events-sqs (pip install 'conductor-events[sqs]') "
        "(plugin conductor-events 0.1.0)"
    )


def test_default_type_must_be_installed_and_enabled(load: Load, write_properties: Write) -> None:
    missing = write_properties("conductor.default-event-queue.type=kafka\n")
    assert [str(p) for p in load(missing).errors] == [
        f"{missing}:1: conductor.default-event-queue.type: no installed plugin provides queue "
        "type 'kafka'; install conductor-events-kafka (pip install 'conductor-events[kafka]') "
        "(plugin conductor-events 0.1.0)"
    ]
    disabled = write_properties(
        "conductor.default-event-queue.type=local\nconductor.event-queues.local.enabled=false\n"
    )
    assert [str(p) for p in load(disabled).errors] == [
        f"{disabled}:1: conductor.default-event-queue.type: queue type 'local' is not enabled; "
        "set conductor.event-queues.local.enabled=true (plugin conductor-events 0.1.0)"
    ]


def test_incomplete_queue_key(load: Load, write_properties: Write) -> None:
    file = write_properties("conductor.event-queues.local=yes\n")
    (problem,) = load(file).errors
    assert "incomplete key: expected conductor.event-queues.<type>.<property>" in str(problem)


def test_raise_for_errors_lists_every_error(load: Load, write_properties: Write) -> None:
    file = write_properties(
        "conductor.event-queues.local.max-deliveries=x\nconductor.event-queues.local.enabled=maybe\n"
    )
    with pytest.raises(ConfigError) as caught:
        load(file).raise_for_errors()
    assert len(caught.value.problems) == 2
    assert caught.value.exit_code == 2


# -- every problem, each in the documented shape -----------------------------------------------

PROBLEM_LINE = re.compile(
    r"^(?P<file>[^:]+):(?P<line>\d+): (?P<key>conductor\.[\w.<>-]+): (?P<message>.+) "
    r"\(plugin (?P<distribution>[\w-]+) (?P<version>\d+\.\d+\.\d+\S*)\)$"
)


@pytest.mark.usefixtures("handler_sections")
def test_a_rule_across_keys_is_checked_while_another_key_is_invalid(
    load: Load, write_properties: Write
) -> None:
    """A model validator does not run while a field is invalid: the section is validated again
    without the invalid value, so both problems are reported, each with its own key and line."""
    file = write_properties(
        "conductor.server.auth.key=app-key\nconductor.server.auth.token-ttl=soon\n"
    )
    assert [str(p) for p in load(file).errors] == [
        f"{file}:1: conductor.server.auth.key: auth.key and auth.secret must be set together "
        "(plugin conductor-events-handlers 0.1.0)",
        f"{file}:2: conductor.server.auth.token-ttl: invalid value 'soon': invalid duration "
        "'soon' (expected e.g. 100ms, 60s, 5m or PT1M) (plugin conductor-events-handlers 0.1.0)",
    ]


@pytest.mark.usefixtures("handler_sections")
def test_a_rule_about_several_keys_is_located_at_the_first(
    load: Load, write_properties: Write
) -> None:
    file = write_properties(
        "conductor.server.url=http://conductor:8080/api\n"
        "conductor.server.auth.token=t0ken\n"
        "conductor.server.auth.key=app-key\n"
        "conductor.server.auth.secret=s3cret\n"
    )
    (problem,) = load(file).errors
    assert str(problem) == (
        f"{file}:2: conductor.server.auth: set either auth.token or auth.key with auth.secret, "
        "not both (plugin conductor-events-handlers 0.1.0)"
    )


@pytest.mark.usefixtures("handler_sections")
def test_every_kind_of_problem_is_file_line_key_message_plugin_version(
    load: Load, write_properties: Write
) -> None:
    file = write_properties(
        "conductor.default-event-queue.type=sqs\n"
        "conductor.default-event-queue.tpye=local\n"
        "conductor.event-queues.local.max-deliveries=abc\n"
        "conductor.event-queues.local=yes\n"
        "conductor.event-queues.kafka.enabled=true\n"
        "conductor.server.auth.key=app-key\n"
        "conductor.event-handlers.concurrency=0\n"
    )
    problems = [str(p) for p in load(file).problems]
    assert len(problems) == 7, problems
    for number, problem in enumerate(problems, start=1):
        match = PROBLEM_LINE.match(problem)
        assert match, problem
        assert (match["file"], match["line"]) == (str(file), str(number))
        # the last two keys are in sections the handlers package declares: it is named
        owner = "conductor-events-handlers" if number > 5 else "conductor-events"
        assert (match["distribution"], match["version"]) == (owner, "0.1.0")
    assert problems[0].startswith(
        f"{file}:1: conductor.default-event-queue.type: no installed plugin provides queue type "
        "'sqs'; install conductor-events-sqs"
    )


# -- config show -------------------------------------------------------------------------------


@pytest.mark.usefixtures("handler_sections")
def test_config_show_aligns_sources_and_never_joins_them_to_a_value(
    load: Load, write_properties: Write, plugins: PluginHost
) -> None:
    long_path = "/srv/" + "queues/" * 12 + "conductor-events.db"
    file = write_properties(f"conductor.event-queues.local.path={long_path}\n")
    lines = show_lines(effective_entries(load(file), plugins))
    assert f"conductor.event-queues.local.path = {long_path}  # {file}:1" in lines
    assert "conductor.event-handlers.executions.path = conductor-events-executions.db" in "\n".join(
        lines
    )
    short = [line for line in lines if long_path not in line]
    assert all("  # " in line for line in lines)
    assert len({line.index("  # ") for line in short}) == 1, "\n".join(short)
    assert max(line.index("  # ") for line in short) <= SOURCE_COLUMN_CAP
