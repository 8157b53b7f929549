"""The README's main command runs the whole stack on embedded services and stops cleanly.

It starts with 30 days of simulated history that the worker counted through Kafka, so the
daily series, leaderboards and an organisation's analytics have something from the start.
"""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from stream.devstack import free_port

pytestmark = pytest.mark.integration

HISTORY_EVENTS = 60_000


class Demo:
    """``hubcounter demo`` as a child process whose output is read line by line as it comes."""

    def __init__(self, *args: str):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stream", "demo", "--api-port", str(self.port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def until(self, pattern: str, timeout: float) -> re.Match[str]:
        """Read the output until a line matches ``pattern``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        pytest.fail(f"the demo never printed /{pattern}/; it printed:\n" + "\n".join(self.seen), pytrace=False)

    def finish(self, timeout: float) -> str:
        """Wait for the demo to exit; all it printed."""
        self.proc.wait(timeout=timeout)
        while (line := self.lines.get(timeout=10)) is not None:
            self.seen.append(line)
        return "\n".join(self.seen)

    def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                         headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return reply.status, orjson.loads(reply.read())
        except urllib.error.HTTPError as err:
            return err.code, orjson.loads(err.read())


@pytest.fixture
def demo() -> Any:
    started = Demo("--duration", "12", "--rate", "1000", "--history-events", str(HISTORY_EVENTS))
    yield started
    if started.proc.poll() is None:
        started.proc.terminate()
        started.proc.wait(timeout=30)


def test_demo_counts_history_then_live_traffic_and_exits_cleanly(demo: Demo) -> None:
    # What a new user sees: services come up, 30 days of history are counted by the worker
    # (with progress), every view has data from then on, live traffic adds to it, all stops.
    demo.until(rf"^history 30 days: {HISTORY_EVENTS:,} simulated requests to Kafka, counted by the worker "
               r"\(lateness window 31 days, HUBCOUNTER_LATENESS_DAYS\)$", timeout=120)
    demo.until(rf"^history {HISTORY_EVENTS:,} of {HISTORY_EVENTS:,} requests counted$", timeout=120)
    token = demo.until(r"^  token +(hct_\S+)$", timeout=30)[1]
    repo = demo.until(r"^  top model +http://127\.0\.0\.1:\d+/#/models/(\S+)$", timeout=10)[1]
    demo.until(r"^Ctrl-C stops everything\.$", timeout=10)

    # The worker read the history from Kafka: it was not written into Redis beside it.
    status, pipeline = demo.get("/api/pipeline/workers")
    assert status == 200 and sum(w["eventsRead"] for w in pipeline["workers"]) >= HISTORY_EVENTS

    # 30 days of daily counts, today included, for the busiest model; a 30-day leaderboard.
    today = datetime.now(UTC).date()
    start = (today - timedelta(days=29)).isoformat()
    status, series = demo.get(f"/api/models/{repo}/downloads?start={start}&end={today.isoformat()}")
    assert status == 200 and len(series["daily"]) == 30
    # Every whole day; today holds only the history since midnight UTC (none just after it).
    assert all(d["downloads"] > 0 for d in series["daily"][:-1]), series["daily"]
    status, listed = demo.get("/api/models?sort=downloads&limit=5")
    assert status == 200 and repo in [r["id"] for r in listed]

    # The analytics answer with the demo's operator token, and only with it.
    range_ = f"start={start}&end={today.isoformat()}"
    for by in ("class", "client", "country", "file"):
        status, body = demo.get(f"/api/models/{repo}/downloads/breakdown?by={by}&{range_}", token)
        assert status == 200, body
        assert sum(v["downloads"] for v in body["values"]) == body["total"] > 0
        assert by == "file" or len(body["values"]) > 1  # several classes, clients, countries
    status, uniques = demo.get(f"/api/models/{repo}/downloads/uniques?{range_}", token)
    assert status == 200 and uniques["uniqueDownloaders"] > 0 and len(uniques["daily"]) == 30
    status, uncounted = demo.get(f"/api/models/{repo}/downloads/uncounted?days=30", token)
    assert status == 200 and all(set(row) == {"path", "requests", "rule"} for row in uncounted)
    status, refused = demo.get(f"/api/models/{repo}/downloads/breakdown?by=class")
    assert status == 401, refused

    output = demo.finish(timeout=120)
    assert demo.proc.returncode == 0, output
    counted = [int(n.replace(",", "")) for n in re.findall(r"downloads counted ([\d,]+)", output)]
    assert counted and counted[-1] > 0, output
    assert re.search(r"^  1\. (model|dataset):\S+  [\d,]+$", output, re.MULTILINE), output
    assert "stopped: broker, Redis, worker and API are down" in output
