"""Embedded services die with the process that started them, however it ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.integration

# A stand-in for a test session or a benchmark: it starts the embedded stack, says which
# processes it started, and waits to be killed.
_OWNER = """
import json, sys, time
from stream.devstack import embedded_stack
with embedded_stack(broker=sys.argv[1]) as stack:
    print(json.dumps([stack.kafka.pid, stack.redis.pid]), flush=True)
    time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: its parent (the killed owner) is gone and init reaps it soon.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1][0] != "Z"


@pytest.mark.parametrize("broker", ["tansu", "kafka"])
def test_sigkilled_owner_leaves_no_services_behind(tmp_path, broker):
    # SIGKILL runs no clean-up in the owner: only the parent-death guard can stop its children
    # (for Apache Kafka, the JVM itself: setpriv execs java, so the guard is on its pid).
    owner = subprocess.Popen([sys.executable, "-c", _OWNER, broker], stdout=subprocess.PIPE, text=True,
                             cwd=tmp_path)
    try:
        pids = json.loads(owner.stdout.readline())
        assert all(_alive(pid) for pid in pids), "the services should be running before the kill"
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if _alive(pid)], "services outlived the process that started them"
