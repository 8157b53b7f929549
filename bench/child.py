"""Running a contender in its own process, and the protocol it answers with.

Every contender runs as a child process (``python -m bench.<module> ...``) so that none
shares an interpreter, a heap or a GIL with the benchmark driver. A child writes its
figures as JSON to ``--result`` (atomically, via a rename); the driver waits for that
file, then stops the child if it is still running (a Faust worker runs until told).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stream.devstack import spawn

_stopping: list[threading.Thread] = []


def stop_in_background(stop: Callable[[], None]) -> None:
    """Stop a process without waiting for it: a Faust app takes a second or two to shut down,
    and the next contender's start-up (outside its measured window) can overlap that."""
    thread = threading.Thread(target=stop, name="stopper", daemon=True)
    thread.start()
    _stopping.append(thread)


def reap(timeout: float = 30.0) -> None:
    """Wait for every process stopped in the background."""
    while _stopping:
        _stopping.pop().join(timeout)


class ChildFailed(RuntimeError):
    """A contender process exited or timed out without writing its result."""


def write_result(path: str | Path, figures: dict[str, Any]) -> None:
    """Write a child's figures so that the driver never reads half a file."""
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(figures))
    tmp.rename(path)


_ROOT = Path(__file__).resolve().parent.parent  # the directory holding the bench package


def child_env() -> dict[str, str]:
    """The driver's environment, with the bench package importable from the child's cwd."""
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
    return env


class Child:
    """One ``python -m module ... --result FILE`` process, its log in the work directory."""

    def __init__(self, module: str, args: list[str], workdir: Path, name: str):
        self.name = name
        self.result_path = workdir / f"{name}.result.json"
        self.log_path = workdir / f"{name}.log"
        self.result_path.unlink(missing_ok=True)
        self.proc = spawn([sys.executable, "-m", module, *args, "--result", str(self.result_path)],
                          self.log_path, cwd=workdir, env=child_env())

    def wait_file(self, path: Path, timeout: float) -> None:
        """Block until ``path`` exists; fail if the child dies or the time runs out first."""
        deadline = time.monotonic() + timeout
        while not path.exists():
            if self.proc.poll() is not None:
                raise ChildFailed(f"{self.name} exited with {self.proc.returncode}; log tail:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise ChildFailed(f"{self.name}: no {path.name} within {timeout:.0f} s; log tail:\n{self.tail()}")
            time.sleep(0.02)

    def result(self, timeout: float) -> dict[str, Any]:
        self.wait_file(self.result_path, timeout)
        return json.loads(self.result_path.read_text())

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the child, SIGKILL it after ``grace`` seconds."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else "(no log)"


def run_child(module: str, args: list[str], workdir: Path, name: str, timeout: float) -> dict[str, Any]:
    """Run a child to its result, then make sure it is gone."""
    child = Child(module, args, workdir, name)
    try:
        return child.result(timeout)
    finally:
        stop_in_background(child.stop)
