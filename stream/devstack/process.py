"""Child service processes that stop with their parent.

A test session or a benchmark starts brokers, Redis servers and workers as children. If
the parent is killed (SIGKILL, an OOM kill, a CI timeout) nothing runs its clean-up, so
every child is started under a parent-death signal: the kernel SIGKILLs it the moment
the thread that started it exits. ``setpriv`` (util-linux) sets that signal and then
``exec``s the service, so the guard costs no extra process and keeps the child's pid.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stream.errors import ServiceMissing

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


def guarded(argv: list[str]) -> list[str]:
    """``argv`` run so that the kernel kills it when its parent goes away.

    The signal fires when the *thread* that started the child exits, so start services
    from a thread that lives as long as they should (the main thread, in practice).
    Where ``setpriv`` is missing (not Linux), the child runs unguarded.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else argv


def spawn(argv: list[str], log_path: Path, **popen: object) -> subprocess.Popen:
    """Start ``argv`` guarded (see :func:`guarded`), its output appended to ``log_path``.

    The child gets a session of its own, so a Ctrl-C in the terminal reaches only the
    parent, which then stops its children in order.
    """
    with log_path.open("ab") as log:
        return subprocess.Popen(guarded(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, **popen)  # type: ignore[call-overload]


@dataclass
class ManagedProcess:
    """A child service process that can be stopped, killed, paused and restarted."""

    name: str
    argv: list[str]
    port: int
    log_path: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)
    start_timeout: float = _START_TIMEOUT_S
    env: dict[str, str] | None = field(default=None, repr=False)  # the whole environment, when given
    # Whether the service on the port is ready to serve (past accepting connections).
    ready: Callable[[int], bool] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start the process and wait until it accepts connections."""
        self.launch()
        self.wait_started()

    def launch(self) -> None:
        """Start the process without waiting (services that need their peers to come up)."""
        self.proc = spawn(self.argv, self.log_path, env=self.env)

    def wait_started(self) -> None:
        """Wait until the launched process accepts connections; stop it if it never does."""
        try:
            wait_for_port(self.port, self.start_timeout, proc=self.proc)
            deadline = time.monotonic() + self.start_timeout
            while self.ready is not None and not self.ready(self.port):
                if time.monotonic() > deadline:
                    raise ServiceMissing(f"listening on {self.port} but not ready after {self.start_timeout:.0f} s")
                time.sleep(0.05)
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

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None
