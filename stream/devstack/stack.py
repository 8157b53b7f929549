"""The embedded stack: a broker and a Redis started for as long as a ``with`` block runs.

The broker is Tansu (the demo's: no JVM needed) or Apache Kafka (the tests' and the
benchmarks': see :mod:`stream.devstack.kafka`). ``KAFKA_BOOTSTRAP`` / ``REDIS_URL``, when
the caller passes them, replace the embedded services (see :func:`embedded_stack` and
:func:`env_overrides`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stream.devstack.kafka import KafkaCluster
from stream.devstack.process import ManagedProcess
from stream.devstack.services import redis_process, tansu_process

Broker = Literal["tansu", "kafka"]


@dataclass
class Stack:
    """Where the running services are, and handles to the embedded ones (None if external).

    ``kafka`` is the broker's process (Tansu's, or the one Apache Kafka node's) and
    ``cluster`` the Apache Kafka cluster it belongs to; ``broker`` says which kind runs,
    ``"external"`` when the caller gave a bootstrap.
    """

    kafka_bootstrap: str
    redis_url: str
    kafka: ManagedProcess | None
    redis: ManagedProcess | None
    workdir: Path
    broker: str = "tansu"
    cluster: KafkaCluster | None = None

    @property
    def idempotence(self) -> bool:
        """Whether producers can be idempotent here (Tansu cannot serve them a producer id)."""
        return self.broker != "tansu"


@contextlib.contextmanager
def embedded_stack(
    *, kafka_bootstrap: str | None = None, redis_url: str | None = None,
    workdir: Path | None = None, durable_redis: bool = True, broker: Broker = "tansu", quick_start: bool = True,
) -> Iterator[Stack]:
    """Start whatever is not given (broker, Redis) and stop it on exit (``quick_start``: see
    :func:`stream.devstack.kafka.java_argv`)."""
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="hubcounter-")
        workdir = Path(tmp.name)
    started: list[ManagedProcess | KafkaCluster] = []
    try:
        kafka = redis = cluster = None
        kind: str = "external" if kafka_bootstrap else broker
        if not kafka_bootstrap:
            if broker == "kafka":
                cluster = KafkaCluster(workdir / "kafka", quick_start=quick_start)
                started.append(cluster)
                cluster.start()
                kafka, kafka_bootstrap = cluster.nodes[0].process, cluster.bootstrap
            else:
                kafka = tansu_process(workdir)
                kafka.start()
                started.append(kafka)
                kafka_bootstrap = f"127.0.0.1:{kafka.port}"
        if not redis_url:
            redis = redis_process(workdir, durable=durable_redis)
            redis.start()
            started.append(redis)
            redis_url = f"redis://127.0.0.1:{redis.port}/0"
        yield Stack(kafka_bootstrap, redis_url, kafka, redis, workdir, kind, cluster)
    finally:
        for service in reversed(started):
            service.stop()
        if tmp is not None:
            tmp.cleanup()


def env_overrides() -> tuple[str | None, str | None]:
    """``KAFKA_BOOTSTRAP`` and ``REDIS_URL`` from the environment, for the edges that honour them."""
    return os.environ.get("KAFKA_BOOTSTRAP") or None, os.environ.get("REDIS_URL") or None
