"""Same seed, same bytes; another seed, other bytes; no dependence on hash seeds."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from stream.simulate import Simulation
from tests.unit.simulate.conftest import NOW

pytestmark = pytest.mark.unit


def _digest(sim: Simulation, count: int) -> str:
    h = hashlib.sha256()
    for rec in sim.records(count):
        h.update(rec.key + b"\0" + rec.value + b"\n")
    for key, value in sim.metadata_records():
        h.update(key + b"\0" + (value or b"null") + b"\n")
    return h.hexdigest()


def test_same_seed_same_output() -> None:
    a = Simulation(seed=5, repos=500, now=NOW, bad_fraction=0.1)
    b = Simulation(seed=5, repos=500, now=NOW, bad_fraction=0.1)
    assert _digest(a, 5_000) == _digest(b, 5_000)


def test_records_restart_from_the_seed_on_each_call() -> None:
    sim = Simulation(seed=5, repos=500, now=NOW)
    assert list(sim.lines(2_000)) == list(sim.lines(2_000))


def test_different_seed_different_output() -> None:
    a = Simulation(seed=5, repos=500, now=NOW)
    b = Simulation(seed=6, repos=500, now=NOW)
    assert _digest(a, 2_000) != _digest(b, 2_000)
    assert a.catalogue.metadata != b.catalogue.metadata


def test_independent_of_python_hash_seed() -> None:
    # str hashing is randomised per process: set/dict-of-str order must not leak in
    code = (
        "from datetime import UTC, datetime\n"
        "import hashlib\n"
        "from stream.simulate import Simulation\n"
        "sim = Simulation(seed=5, repos=300, now=datetime(2026, 11, 21, 12, tzinfo=UTC),"
        " bad_fraction=0.1)\n"
        "h = hashlib.sha256()\n"
        "for line in sim.lines(3000): h.update(line)\n"
        "for line in sim.metadata_lines(): h.update(line)\n"
        "print(h.hexdigest())\n"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                             capture_output=True, text=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="naive"):
        Simulation(seed=1, repos=10, now=NOW.replace(tzinfo=None))
