"""``${...}`` substitution with Jayway JsonPath semantics, as Conductor's ParametersUtils."""

from __future__ import annotations

from typing import Any

import pytest

from conductor_events_handlers.inline_json import expand
from conductor_events_handlers.templates import TemplateError, compile_template

PAYLOAD: dict[str, Any] = {
    "orderId": 12,
    "MessageId": "m-1",
    "field": "metadata",
    "nothing": None,
    "flag": True,
    "Message": {
        "testKey1": "level1",
        "metadata": {"testKey2": 123456, "name": "x"},
        "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 5}, {"sku": "c", "qty": 9}],
    },
    "conductor.event.name": "dotted",
}


def render(template: Any, payload: Any = PAYLOAD, allowed_env: tuple[str, ...] = ()) -> Any:
    return compile_template(template, allowed_env).render(payload)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${orderId}", 12),  # exactly one expression keeps the JSON type
        ("${Message.metadata}", {"testKey2": 123456, "name": "x"}),
        ("${Message.metadata.testKey2}", 123456),
        ("${$}", PAYLOAD),  # the whole payload
        ("${flag}", True),
        ("SQS-${MessageId}", "SQS-m-1"),  # interpolation
        ("${orderId}-${Message.metadata.name}", "12-x"),
        ("n=${nothing}", "n=null"),
        ("f=${flag}", "f=true"),
        ("m=${Message.metadata}", 'm={"testKey2":123456,"name":"x"}'),
        ("${missing}", None),  # a missing path gives null
        ("${Message.missing.deeper}", None),
        ("x${missing}", "xnull"),
        ("$${orderId}", "${orderId}"),  # escaped
        ("cost: $${total} for ${orderId}", "cost: ${total} for 12"),
        ("${}", ""),
        ("${  }", ""),
        ("${Message.${field}.name}", "x"),  # nested expressions
        ("${workflow.secrets.db_password}", "${workflow.secrets.db_password}"),
        ("${['conductor.event.name']}", "dotted"),
        ("no expressions", "no expressions"),
    ],
)
def test_string_templates(template: str, expected: Any) -> None:
    assert render(template) == expected


def test_maps_and_lists_are_substituted_at_every_depth() -> None:
    template = {
        "a": ["${orderId}", {"b": "${MessageId}"}, 3],
        "c": {"d": "${Message.testKey1}"},
        "e": None,
    }
    assert render(template) == {"a": [12, {"b": "m-1"}, 3], "c": {"d": "level1"}, "e": None}


def test_constant_containers_are_fresh_on_each_render() -> None:
    template = compile_template({"a": {"b": [1, 2]}, "c": "${orderId}"})
    first = template.render(PAYLOAD)
    first["a"]["b"].append(3)
    assert template.render(PAYLOAD) == {"a": {"b": [1, 2]}, "c": 12}


def test_a_payload_that_is_not_json_is_the_root_string() -> None:
    assert render({"raw": "${$}", "x": "${a.b}"}, payload="plain text") == {
        "raw": "plain text",
        "x": None,
    }


def test_environment_variables_are_read_only_when_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGION", "eu-1")
    monkeypatch.setenv("DB_PASSWORD", "hunter2")
    assert render("${REGION}") is None  # not allowed: reads the payload, which lacks it
    assert render("${DB_PASSWORD}") is None
    assert render("${REGION}", allowed_env=("REGION",)) == "eu-1"
    assert render("${orderId}", allowed_env=("orderId",)) == 12  # allowed but unset: payload


@pytest.mark.parametrize("bad", ["${orderId", "${a[}", "${a.nofunction()}", "x ${a[?(@.b ==)]}"])
def test_templates_that_cannot_compile(bad: str) -> None:
    with pytest.raises(TemplateError):
        compile_template({"k": [bad]})


# -- inline JSON ---------------------------------------------------------------------------


def test_inline_json_is_expanded_without_touching_the_input() -> None:
    sns = {
        "Type": "Notification",
        "Message": '{"testKey1": "level1", "metadata": {"testKey2": 123456}}',
        "list": ['{"a": 1}', "plain"],
        "number": "123",
        "broken": "{not json",
    }
    expanded = expand(sns)
    assert expanded["Message"] == {"testKey1": "level1", "metadata": {"testKey2": 123456}}
    assert expanded["list"] == [{"a": 1}, "plain"]
    assert expanded["number"] == "123"  # only objects and arrays are parsed
    assert expanded["broken"] == "{not json"
    assert isinstance(sns["Message"], str)
    unchanged = {"a": [1, {"b": "c"}]}
    assert expand(unchanged) is unchanged
