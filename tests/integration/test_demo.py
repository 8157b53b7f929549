"""The README's main command runs the whole stack on embedded services and stops cleanly."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from stream.devstack import free_port

pytestmark = pytest.mark.integration


def test_demo_counts_simulated_traffic_and_exits_cleanly():
    # What a new user sees: services come up, downloads get counted, everything stops.
    done = subprocess.run(
        [sys.executable, "-m", "stream", "demo", "--duration", "15", "--rate", "1000",
         "--api-port", str(free_port())],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    counted = [int(n.replace(",", "")) for n in re.findall(r"downloads counted ([\d,]+)", done.stdout)]
    assert counted and counted[-1] > 0, done.stdout
    assert re.search(r"^  1\. (model|dataset):\S+  [\d,]+$", done.stdout, re.MULTILINE), done.stdout
    assert "stopped: broker, Redis, worker and API are down" in done.stdout
