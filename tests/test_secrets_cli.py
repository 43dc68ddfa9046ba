"""No secret reaches the output of any command, at any log level, with plugin tracing on.

Every installed plugin loads, and one properties file holds a secret of each kind: a Service Bus
SharedAccessKey inside a connection string, an SQS secret key, Kafka SASL and TLS passwords
(map entries, which carry no secret type), and an Orkes key secret for ``conductor.server``.
Each command then runs as a user would, in its own process, doing its real work: ``serve``
exchanges the key secret for a token with a Conductor API double and completes a task. A second
file holds the secrets in entries that are wrong, so they pass through the error paths too.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from conductor_events_handlers.testing.conductor_double import ConductorDouble
from tests.support.cli import cli_env, run_cli

SHARED_ACCESS_KEY = "AzureSharedAccessKey0ValueXYZ="
SQS_SECRET = "SqsSecretAccessKey0Value"
KAFKA_SASL_PASSWORD = "KafkaSaslPlainPassword0Value"
KAFKA_TLS_PASSWORD = "KafkaTlsKeyPassword0Value"
KAFKA_JAAS_PASSWORD = "KafkaJaasPassword0Value"
ORKES_SECRET = "OrkesKeySecret0Value"
BEARER_TOKEN = "ConductorBearerToken0Value"
SECRETS = (
    SHARED_ACCESS_KEY,
    SQS_SECRET,
    KAFKA_SASL_PASSWORD,
    KAFKA_TLS_PASSWORD,
    KAFKA_JAAS_PASSWORD,
    ORKES_SECRET,
    BEARER_TOKEN,
)

LOG_LEVELS = [
    pytest.param(["--debug"], id="debug-flag"),
    pytest.param(["--log-level", "debug", "--log-format", "console"], id="debug-console"),
    pytest.param(["--log-level", "info"], id="info"),
    pytest.param(["--log-level", "warning"], id="warning"),
    pytest.param(["--log-level", "error"], id="error"),
]
TRACE = {"CONDUCTOR_EVENTS_TRACE_PLUGINS": "1"}
EVENT = "local:orders"


def connection_string(endpoint: str = "sb://example.servicebus.windows.net/") -> str:
    return f"Endpoint={endpoint};SharedAccessKeyName=send;SharedAccessKey={SHARED_ACCESS_KEY}"


def valid_properties(directory: Path, server_url: str, handlers: Path) -> Path:
    values = {
        "conductor.event-queues.azure.enabled": "true",
        "conductor.event-queues.azure.connection-string": connection_string(),
        "conductor.event-queues.sqs.enabled": "true",
        "conductor.event-queues.sqs.access-key-id": "AKIDEXAMPLE",
        "conductor.event-queues.sqs.secret-access-key": SQS_SECRET,
        "conductor.event-queues.kafka.enabled": "true",
        "conductor.event-queues.kafka.producer.security.protocol": "SASL_SSL",
        "conductor.event-queues.kafka.producer.sasl.mechanism": "PLAIN",
        "conductor.event-queues.kafka.producer.sasl.plain.username": "user",
        "conductor.event-queues.kafka.producer.sasl.plain.password": KAFKA_SASL_PASSWORD,
        "conductor.event-queues.kafka.consumer.ssl.password": KAFKA_TLS_PASSWORD,
        "conductor.event-queues.local.path": str(directory / "queue.db"),
        "conductor.event-queues.local.poll-interval": "20ms",
        "conductor.server.url": server_url,
        "conductor.server.auth.key": "orkes-key-id",
        "conductor.server.auth.secret": ORKES_SECRET,
        "conductor.event-handlers.definitions": str(handlers),
        "conductor.event-handlers.executions.path": str(directory / "executions.db"),
        "conductor.event-handlers.reload-interval": "0",
    }
    path = directory / "app.properties"
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return path


def invalid_properties(directory: Path) -> Path:
    """Each secret in an entry that is wrong, or next to one: every line is a problem."""
    lines = [
        f"conductor.event-queues.azure.connection-string={connection_string('http://ns/')}",
        f"conductor.event-queues.sqs.secret-access-key={SQS_SECRET}",
        "conductor.event-queues.kafka.producer.acks=2",
        f"conductor.event-queues.kafka.producer.sasl.plain.password={KAFKA_SASL_PASSWORD}",
        "conductor.event-queues.kafka.consumer.sasl.jaas.config=org.apache.kafka.common."
        f'security.plain.PlainLoginModule required username="u" password="{KAFKA_JAAS_PASSWORD}";',
        f"conductor.event-queues.kafka.consumer.ssl.password={KAFKA_TLS_PASSWORD}",
        "conductor.event-queues.kafka.max-deliveries=abc",
        f"conductor.server.auth.token={BEARER_TOKEN}",
        f"conductor.server.auth.secret={ORKES_SECRET}",
        "conductor.server.auth.token-ttl=soon",
        f"conductor.event-queues.local.path={directory / 'queue.db'}",
    ]
    path = directory / "invalid.properties"
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def write_handlers(path: Path) -> Path:
    handler = {
        "name": "complete_a",
        "event": EVENT,
        "actions": [
            {
                "action": "complete_task",
                "complete_task": {
                    "workflowId": "${workflowInstanceId}",
                    "taskRefName": "task_a",
                    "output": {"by": "complete_a"},
                },
            }
        ],
        "active": True,
    }
    path.write_text(json.dumps([handler]))
    return path


def assert_no_secret(what: str, output: str) -> None:
    leaked = [secret for secret in SECRETS if secret in output]
    assert not leaked, f"{what} printed {leaked}:\n{output[-3000:]}"


async def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the command with every installed plugin, in a thread so the double keeps serving."""
    return await asyncio.to_thread(run_cli, *args, cwd=cwd, env=env or TRACE, plugins=None)


@pytest.fixture
async def double() -> AsyncIterator[ConductorDouble]:
    async with ConductorDouble(key_id="orkes-key-id", key_secret=ORKES_SECRET) as server:
        server.register_workflow("bridge", ["task_a"])
        yield server


async def run_serve(
    level: Sequence[str], properties: Path, cwd: Path, done: ConductorDouble, workflow: str
) -> str:
    """``serve`` until the double has the task completed, then SIGTERM; its whole output."""
    log = cwd / "serve.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "conductor_events", *level, "-c", str(properties), "serve"],
            cwd=cwd,
            env=cli_env(TRACE, plugins=None),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while done.task(workflow, "task_a")["status"] != "COMPLETED":
                output = log.read_text(errors="replace")
                assert process.returncode is None, f"serve exited early:\n{output[-3000:]}"
                assert time.monotonic() < deadline, f"serve did not act:\n{output[-3000:]}"
                await asyncio.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    output = log.read_text(errors="replace")
    assert code == 0, output[-3000:]
    return output


@pytest.mark.parametrize("level", LOG_LEVELS)
async def test_no_command_prints_a_secret(
    level: list[str], tmp_path: Path, double: ConductorDouble
) -> None:
    handlers = write_handlers(tmp_path / "handlers.json")
    properties = valid_properties(tmp_path, double.url, handlers)
    first, second = double.start_workflow("bridge"), double.start_workflow("bridge")
    config = ["-c", str(properties)]
    commands = [
        ["config", "check"],
        ["config", "show"],
        ["config", "show", "--json"],
        ["plugins"],
        ["plugins", "--json"],
        ["publish", EVENT, "--workflow-id", first],
        ["listen", EVENT, "--count", "1", "--timeout", "30", "--json"],
        ["handlers", "check", str(handlers)],
        ["publish", EVENT, "--workflow-id", second],
    ]
    for command in commands:
        result = await cli(*level, *config, *command, cwd=tmp_path)
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{command}: {output[-3000:]}"
        assert_no_secret(" ".join(command), output)
        if command[0] == "listen":
            assert first in result.stdout, result.stdout
        if "debug" in " ".join(level) and command[0] != "plugins":
            # the trace ran, with the configuration in it: the test saw what it is about
            assert "validate_config" in result.stderr, command
            assert "******" in result.stderr, command
    assert_no_secret("serve", await run_serve(level, properties, tmp_path, double, second))
    token_requests = double.requests_to("POST", "/api/token")
    assert token_requests, "serve never exchanged the key secret for a token"


@pytest.mark.parametrize("level", LOG_LEVELS)
async def test_no_error_prints_a_secret(level: list[str], tmp_path: Path) -> None:
    properties = invalid_properties(tmp_path)
    handlers = write_handlers(tmp_path / "handlers.json")
    config = ["-c", str(properties)]
    commands = [
        ["config", "check"],
        ["config", "show"],
        ["publish", EVENT],
        ["listen", EVENT, "--timeout", "1"],
        ["handlers", "check", str(handlers)],
        ["serve", "--handlers", str(handlers)],
    ]
    for command in commands:
        result = await cli(*level, *config, *command, cwd=tmp_path)
        output = result.stdout + result.stderr
        if command[1] == "show":
            assert result.returncode == 0, output[-3000:]
            assert "= ******" in output
        else:  # refused, listing the configuration's problems
            assert result.returncode != 0, output[-3000:]
            assert "kafka.producer.acks" in output
        assert_no_secret(" ".join(command), output)
    checked = await cli(*config, "config", "check", cwd=tmp_path)
    lines = [int(line.split(":")[1]) for line in checked.stdout.splitlines()]
    assert lines == [1, 2, 3, 5, 7, 8, 10], checked.stdout  # each problem, with its line
