"""The simulated hub looks like the real one: skewed popularity, mixes as configured."""

from __future__ import annotations

import itertools
from collections import Counter

import orjson
import pytest

from stream.simulate import Simulation, clients
from stream.simulate.badrecords import KINDS
from stream.simulate.catalogue import MODEL_PROFILES
from tests.unit.simulate.conftest import NOW

pytestmark = pytest.mark.unit


def test_top_one_percent_of_repos_take_most_requests(default_sim: Simulation) -> None:
    per_repo = Counter(rec.key for rec in default_sim.records(100_000))
    top = len(default_sim.catalogue.all_repos()) // 100
    share = sum(n for _, n in per_repo.most_common(top)) / sum(per_repo.values())
    assert share > 0.30


def test_default_catalogue_sizes_and_owners(default_sim: Simulation) -> None:
    repos = default_sim.catalogue.repos
    assert (len(repos["model"]), len(repos["dataset"]), len(repos["space"])) == (
        30_000, 3_000, 2_000)
    owners = Counter(r.name.split("/")[0] if "/" in r.name else None
                     for r in default_sim.catalogue.all_repos())
    legacy = owners.pop(None)
    assert legacy > 100  # bare legacy names exist
    sizes = sorted(owners.values(), reverse=True)
    assert sizes[0] >= 1_000  # a few publishers with thousands of repos
    assert sum(1 for s in sizes if s == 1) > len(sizes) * 0.3  # a long tail of one-repo users
    names = [r.name for r in default_sim.catalogue.all_repos()]
    assert len(names) == len(set(names))


def test_library_mix_as_configured(default_sim: Simulation) -> None:
    models = default_sim.catalogue.repos["model"]
    seen = Counter(r.profile for r in models)
    total = sum(p.weight for p in MODEL_PROFILES)
    for profile in MODEL_PROFILES:
        expected = profile.weight / total
        assert abs(seen[profile.name] / len(models) - expected) < 0.2 * expected + 0.003
    # transformers-style repos lead
    assert seen.most_common(2)[0][0] in ("transformers", "no-library")


def test_every_behaviour_appears(small_sim: Simulation) -> None:
    seen = Counter(rec.behaviour for rec in small_sim.records(60_000))
    assert set(seen) == set(clients.ALL_BEHAVIOURS)


@pytest.mark.parametrize("fraction", [0.0, 0.02, 0.2])
def test_bad_fraction_roughly_as_asked(fraction: float) -> None:
    sim = Simulation(seed=3, repos=300, now=NOW, bad_fraction=fraction)
    recs = list(sim.records(20_000))
    bad = Counter(r.bad for r in recs if r.bad)
    assert abs(sum(bad.values()) / len(recs) - fraction) < 0.01 + fraction * 0.1
    if fraction >= 0.2:
        assert set(bad) == set(KINDS)


def test_url_form_share_and_quirks(small_sim: Simulation) -> None:
    events = [orjson.loads(r.value) for r in small_sim.records(20_000) if r.bad is None]
    url_share = sum("url" in e for e in events) / len(events)
    assert 0.015 < url_share < 0.05
    assert any(e["method"].islower() for e in events)
    assert any(isinstance(e["status"], str) for e in events)
    assert any(isinstance(e["timestamp"], int) for e in events)
    assert any(isinstance(e["timestamp"], str) and e["timestamp"][-6] in "+-" for e in events)
    assert any("url" in e and "refs%2Fpr%2F1" in e["url"] for e in events)
    assert any("hashedUserId" in e for e in events)
    assert any("hashedIp" in e for e in events)
    assert any("hashedUserId" not in e and "hashedIp" not in e for e in events)
    statuses = {int(e["status"]) for e in events}
    assert {200, 206, 302, 304, 307, 401, 404} <= statuses


def test_arrivals_are_mostly_but_not_entirely_in_order(small_sim: Simulation) -> None:
    stamps = [r.timestamp_ms for r in small_sim.records(20_000)]
    behind = sum(1 for a, b in itertools.pairwise(stamps) if b < a)
    assert 0 < behind < len(stamps) * 0.5
    assert max(stamps) - min(stamps) > 2 * 86_400_000  # spread over the last days


def test_metadata_has_missing_entries_updates_and_tombstones(default_sim: Simulation) -> None:
    records = list(default_sim.metadata())
    keys = Counter(k for k, _ in records)
    models = {r.key for r in default_sim.catalogue.repos["model"]}
    assert len(models - set(keys)) > 100  # repos with no entry
    assert any(n > 1 for n in keys.values())  # updates
    assert any(v is None for _, v in records)  # tombstones
    assert any(k.startswith("dataset:") for k in keys)
    libraries = Counter(v.get("library_name") for _, v in records if v)
    assert libraries["transformers"] > libraries["diffusers"] > 0
