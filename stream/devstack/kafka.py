"""Apache Kafka (KRaft) for the tests and the benchmarks: one node or a cluster of three.

Each node is a combined broker and controller, ``java -cp '<classpath>/*' kafka.Kafka
server.properties``, on free loopback ports, its storage formatted first with Kafka's
own ``StorageTool``. The classpath is what ``make kafka`` copied from Maven Central
(``deploy/kafka/pom.xml`` pins the version); nothing is downloaded here. Nodes run under
the parent-death guard of :mod:`stream.devstack.process`, keep their log directory across
a stop and a start (a restart reads its own log back), and are tuned for fast tests on
small machines: small heaps, no initial rebalance delay, few internal partitions.

Every node has three listeners: ``CONTROLLER`` (the KRaft quorum) and ``INTERNAL``
(between brokers, and the readiness checks), both plaintext on loopback, and ``CLIENT``,
the one clients are given: plaintext, or SASL_SSL with SCRAM and PLAIN users and ACLs
enforced by ``StandardAuthorizer`` when a :class:`KafkaSecurity` is passed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.errors import KafkaError

from stream import kafka
from stream.devstack.process import ManagedProcess, free_port
from stream.errors import ServiceMissing

_REPO = Path(__file__).resolve().parents[2]
POM = _REPO / "deploy" / "kafka" / "pom.xml"
_HEAP = "-Xmx448m"
_READY_TIMEOUT_S = 90.0

_LOG4J = """\
rootLogger.level=WARN
rootLogger.appenderRef.out.ref=out
appender.out.type=Console
appender.out.name=out
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
logger.server.name=kafka.server.KafkaRaftServer
logger.server.level=INFO
logger.controller.name=org.apache.kafka.controller
logger.controller.level=INFO
"""


def kafka_version() -> str:
    """The Kafka version ``deploy/kafka/pom.xml`` pins."""
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text()) if POM.exists() else None
    if found is None:
        raise ServiceMissing(f"no Kafka version: {POM} is missing or names none")
    return found.group(1)


def kafka_classpath() -> Path:
    """The directory of the broker's jars (``HUBCOUNTER_KAFKA_HOME``, else what ``make kafka`` made)."""
    home = os.environ.get("HUBCOUNTER_KAFKA_HOME")
    path = Path(home) if home else _REPO / ".cache" / f"kafka-{kafka_version()}"
    if not (path / ".complete").exists() and not any(path.glob("kafka_2.13-*.jar")):
        raise ServiceMissing(f"no Apache Kafka at {path}: run `make kafka` (it copies the broker from "
                             "Maven Central), or point HUBCOUNTER_KAFKA_HOME at a directory of its jars")
    return path


def java_argv(main_class: str, *args: str, heap: str = _HEAP, log4j: Path | None = None,
              quick_start: bool = True) -> list[str]:
    """``java`` running ``main_class`` of the Kafka classpath.

    ``quick_start`` compiles with the fast JIT only: a short-lived tool or a test broker
    starts sooner on two cores; a broker that must be fast (the benchmarks') turns it off.
    """
    argv = ["java", heap, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true"]
    if quick_start:
        argv.append("-XX:TieredStopAtLevel=1")
    if log4j is not None:
        argv.append(f"-Dlog4j2.configurationFile={log4j}")
    return [*argv, "-cp", f"{kafka_classpath()}/*", main_class, *args]


def cluster_id() -> str:
    """A random KRaft cluster id (Kafka's Uuid text: URL-safe base64 of 16 bytes, no padding)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka avoids ids that read as command-line options
            return text


@dataclass(frozen=True)
class KafkaSecurity:
    """A SASL_SSL client listener: the broker's TLS identity, users, and ACLs enforced.

    ``keystore`` is a PEM file holding the broker's private key (PKCS#8, unencrypted) and
    its certificate chain; ``users`` maps user names to passwords, each usable with PLAIN,
    SCRAM-SHA-256 and SCRAM-SHA-512. ``super_users`` may do anything; every other user
    only what ACLs grant it.
    """

    keystore: Path
    users: dict[str, str]
    super_users: tuple[str, ...] = ("admin",)


@dataclass
class KafkaNode:
    """One combined broker+controller and its ports and log directory."""

    node_id: int
    client_port: int
    internal_port: int
    controller_port: int
    log_dir: Path
    process: ManagedProcess

    @property
    def running(self) -> bool:
        return self.process.running


@dataclass
class KafkaCluster:
    """Kafka nodes started together; ``bootstrap`` is every node's client listener."""

    workdir: Path
    size: int = 1
    security: KafkaSecurity | None = None
    quick_start: bool = True  # see java_argv; off where the broker's throughput is measured
    nodes: list[KafkaNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ports = [(free_port(), free_port(), free_port()) for _ in range(self.size)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, (_, _, c) in enumerate(ports))
        for i, (client, internal, controller) in enumerate(ports):
            node_dir = self.workdir / f"kafka-{i + 1}"
            node_dir.mkdir(exist_ok=True)
            config = node_dir / "server.properties"
            config.write_text(self._properties(i + 1, client, internal, controller, voters, node_dir / "data"))
            (node_dir / "log4j2.properties").write_text(_LOG4J)
            argv = java_argv("kafka.Kafka", str(config), log4j=node_dir / "log4j2.properties",
                             quick_start=self.quick_start)
            process = ManagedProcess(f"kafka-{i + 1}", argv, internal, node_dir / "kafka.log",
                                     start_timeout=_READY_TIMEOUT_S)
            self.nodes.append(KafkaNode(i + 1, client, internal, controller, node_dir / "data", process))

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{node.client_port}" for node in self.nodes)

    @property
    def internal_bootstrap(self) -> str:
        """The plaintext listeners (no credentials; a super user when ACLs are on)."""
        return ",".join(f"127.0.0.1:{node.internal_port}" for node in self.nodes)

    def node(self, node_id: int) -> KafkaNode:
        return self.nodes[node_id - 1]

    def start(self) -> None:
        """Format the storage of every node, start them all and wait until each is a live broker."""
        self._format()
        try:
            for node in self.nodes:
                node.process.launch()  # together: a node's controller needs a quorum of its peers
            for node in self.nodes:
                node.process.wait_started()
            self.wait_brokers(self.size)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM every node (controlled shutdown), then SIGKILL what is left."""
        for node in self.nodes:
            node.process.signal(signal.SIGTERM)  # all at once: none waits on peers already gone
        for node in self.nodes:
            node.process.stop(timeout=30)

    def start_stopped(self) -> None:
        """Start every node that is not running (after a test that stopped one and failed)."""
        for node in self.nodes:
            if not node.running:
                self.start_node(node.node_id)

    def start_node(self, node_id: int) -> None:
        """Start a stopped node again from its own log directory; wait until the cluster has it."""
        self.node(node_id).process.start()
        self.wait_brokers(sum(node.running for node in self.nodes))

    def wait_brokers(self, count: int, timeout: float = _READY_TIMEOUT_S) -> None:
        """Block until ``count`` brokers answer metadata requests as registered, live brokers."""
        asyncio.run(self._wait_brokers(count, time.monotonic() + timeout))

    async def _wait_brokers(self, count: int, deadline: float) -> None:
        seen: object = "no answer"
        while time.monotonic() < deadline:
            dead = [node.process.name for node in self.nodes if node.process.proc is not None and not node.running]
            if dead:
                raise ServiceMissing(f"{', '.join(dead)} exited; see {self.workdir}/kafka-*/kafka.log")
            client = kafka.admin(self._internal(), request_timeout_ms=5000)
            try:
                await client.start()
                brokers = (await client.describe_cluster())["brokers"]
                if len(brokers) >= count:
                    return
                seen = f"{len(brokers)} brokers"
            except Exception as exc:  # still starting: any error means "not yet"
                seen = exc
            finally:
                await client.close()
            await asyncio.sleep(0.3)
        raise ServiceMissing(f"Kafka at {self.internal_bootstrap} has no {count} live brokers in time "
                             f"({seen}); see {self.workdir}/kafka-*/kafka.log")

    def partitions(self, topic: str, timeout: float = 30.0) -> list[dict]:
        """The partitions of ``topic`` as the brokers describe them (``leader``, ``replicas``, ``isr``).

        While a node is down the metadata may still name it, and a request sent there fails:
        ask again (another node answers) until ``timeout``.
        """
        async def run() -> list[dict]:
            deadline = time.monotonic() + timeout
            while True:
                client = kafka.admin(self._internal(), request_timeout_ms=5000)
                try:
                    await client.start()
                    described = await client.describe_topics([topic])
                    return sorted(described[0]["partitions"], key=lambda p: p["partition"])
                except KafkaError:
                    if time.monotonic() > deadline:
                        raise
                finally:
                    await client.close()
                await asyncio.sleep(0.2)
        return asyncio.run(run())

    def leaders(self, topic: str) -> dict[int, int]:
        """Partition -> node id of its leader (-1 while it has none)."""
        return {p["partition"]: p["leader"] for p in self.partitions(topic)}

    def wait_in_sync(self, topic: str, timeout: float = _READY_TIMEOUT_S) -> None:
        """Block until every replica of every partition of ``topic`` is in sync again."""
        deadline = time.monotonic() + timeout
        while True:
            lagging = [p["partition"] for p in self.partitions(topic) if set(p["isr"]) != set(p["replicas"])]
            if not lagging:
                return
            if time.monotonic() > deadline:
                raise ServiceMissing(f"partitions {lagging} of {topic} not in sync after {timeout:.0f} s")
            time.sleep(0.2)

    def grant(self, user: str, operations: tuple[str, ...], *, topics: tuple[str, ...] = (),
              groups: tuple[str, ...] = ()) -> None:
        """Allow ``user`` the ACL ``operations`` (``Read``, ``Write``, ``Describe``...) on these
        topics and groups, with Kafka's own ``AclCommand`` (through the internal listener)."""
        argv = java_argv("org.apache.kafka.tools.AclCommand", "--bootstrap-server", self._internal().bootstrap,
                         "--add", "--allow-principal", f"User:{user}", heap="-Xmx256m")
        argv += [arg for op in operations for arg in ("--operation", op)]
        argv += [arg for t in topics for arg in ("--topic", t)]
        argv += [arg for g in groups for arg in ("--group", g)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise ServiceMissing(f"AclCommand failed ({done.returncode}):\n{(done.stdout + done.stderr)[-2000:]}")

    def _internal(self) -> kafka.KafkaConnection:
        live = [node for node in self.nodes if node.running] or self.nodes
        return kafka.KafkaConnection(",".join(f"127.0.0.1:{node.internal_port}" for node in live))

    def _format(self) -> None:
        """``StorageTool format`` every node (in parallel: each is a JVM start)."""
        cid = cluster_id()
        scram: list[str] = []
        for user, password in (self.security.users.items() if self.security else ()):
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
                scram += ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
        running = []
        for node in self.nodes:
            if (node.log_dir / "meta.properties").exists():
                continue  # formatted before: a restart keeps its log
            argv = java_argv("kafka.tools.StorageTool", "format", "--cluster-id", cid, "--config",
                             str(node.log_dir.parent / "server.properties"), *scram, heap="-Xmx256m")
            running.append((node, subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                   text=True)))
        for node, proc in running:
            out, _ = proc.communicate(timeout=120)
            if proc.returncode != 0:
                raise ServiceMissing(f"formatting the storage of kafka-{node.node_id} failed:\n{out[-2000:]}")

    def _properties(self, node_id: int, client: int, internal: int, controller: int, voters: str,
                    log_dir: Path) -> str:
        replicas = min(self.size, 3)
        client_protocol = "SASL_SSL" if self.security else "PLAINTEXT"
        props = {
            "process.roles": "broker,controller",
            "node.id": node_id,
            "controller.quorum.voters": voters,
            "listeners": f"CLIENT://127.0.0.1:{client},INTERNAL://127.0.0.1:{internal},"
                         f"CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": f"CLIENT://127.0.0.1:{client},INTERNAL://127.0.0.1:{internal}",
            "listener.security.protocol.map": f"CLIENT:{client_protocol},INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "INTERNAL",
            "log.dirs": str(log_dir),
            # Internal topics sized for tests: few partitions, replicated as far as the cluster allows.
            "offsets.topic.num.partitions": 8,
            "offsets.topic.replication.factor": replicas,
            "transaction.state.log.num.partitions": 4,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min(replicas, 2),
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min(replicas, 2),
            "default.replication.factor": replicas,
            "num.partitions": 1,
            "group.initial.rebalance.delay.ms": 0,
            # Tests and benchmarks use short session timeouts (Kafka refuses < 6 s by default).
            "group.min.session.timeout.ms": 1000,
            "num.io.threads": 4,
            "num.network.threads": 2,
            # The compaction tests want the cleaner to run soon and within a small heap.
            "log.cleaner.backoff.ms": 500,
            "log.cleaner.dedupe.buffer.size": 8 * 1024 * 1024,
        }
        if self.security is not None:
            props.update(self._security_properties(self.security))
        return "".join(f"{key}={value}\n" for key, value in props.items())

    @staticmethod
    def _security_properties(security: KafkaSecurity) -> dict[str, object]:
        plain_users = " ".join(f'user_{user}="{password}"' for user, password in security.users.items())
        # ANONYMOUS is whoever uses the plaintext INTERNAL and CONTROLLER listeners: the
        # brokers and controllers themselves (and the readiness checks), on loopback only.
        supers = ";".join(f"User:{user}" for user in (*security.super_users, "ANONYMOUS"))
        return {
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            "listener.name.client.plain.sasl.jaas.config":
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};",
            "listener.name.client.scram-sha-256.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.client.scram-sha-512.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.client.ssl.keystore.type": "PEM",
            "listener.name.client.ssl.keystore.location": str(security.keystore),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": supers,
        }


@contextlib.contextmanager
def kafka_cluster(workdir: Path, size: int = 1, security: KafkaSecurity | None = None) -> Iterator[KafkaCluster]:
    """A started cluster of ``size`` nodes, stopped when the block ends."""
    cluster = KafkaCluster(workdir, size, security)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
