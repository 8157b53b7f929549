"""Every good record is a valid event of the log format; every bad one is rejected."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from stream import reference
from stream.simulate import Simulation
from tests.unit.simulate.conftest import NOW

pytestmark = pytest.mark.unit

ISO_WITH_ZONE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)")
URL = re.compile(r"(/datasets|/spaces)?/[^/]+(/[^/]+)?/resolve/[^/]+/.+")
REPO = re.compile(r"[^/]+(/[^/]+)?")
OPTIONAL = {"revision": str, "hashedUserId": str, "hashedIp": str, "userAgent": str,
            "country": str, "region": str, "bytes": int, "requestId": str}


def check_event(event: dict[str, Any]) -> None:
    """Assert ``event`` follows the format, by hand (no shared parser)."""
    stamp = event["timestamp"]
    if isinstance(stamp, int):
        assert 1_500_000_000_000 < stamp < 2_500_000_000_000
    else:
        assert ISO_WITH_ZONE.fullmatch(stamp), stamp
    assert event["method"].upper() in ("GET", "HEAD")
    status = event["status"]
    assert isinstance(status, int) or (isinstance(status, str) and status.isdigit())
    if "url" in event:
        assert URL.fullmatch(event["url"]), event["url"]
        assert not {"repoType", "repoName", "path"} & set(event)
    else:
        assert event["repoType"] in ("model", "dataset", "space")
        assert REPO.fullmatch(event["repoName"])
        assert event["path"] and isinstance(event["path"], str)
    assert not ("hashedUserId" in event and "hashedIp" in event)
    for name, kind in OPTIONAL.items():
        if name in event:
            assert isinstance(event[name], kind)
    allowed = {"timestamp", "method", "status", "url", "repoType", "repoName", "path", *OPTIONAL}
    assert set(event) <= allowed


def test_good_records_follow_the_format(small_sim: Simulation) -> None:
    good = [r for r in small_sim.records(20_000) if r.bad is None]
    for rec in good:
        event = orjson.loads(rec.value)
        check_event(event)
        parsed = reference.read_message(rec.value)
        assert isinstance(parsed, reference.Request), parsed
        assert rec.key.decode() == f"{parsed.repo_type}:{parsed.repo}"
        # every good event lies in the counting window of the simulation's now
        assert NOW - timedelta(days=7) <= parsed.timestamp <= NOW + timedelta(hours=1)


def test_bad_records_never_count(small_sim: Simulation) -> None:
    bad = [r.value for r in small_sim.records(20_000) if r.bad is not None]
    assert len(bad) > 500
    metadata = list(small_sim.metadata())
    result = reference.run(bad, metadata, now=NOW)
    assert result.counts == {}
    assert sum(n for k, n in result.stats.items() if k.startswith("dead:")) == len(bad)


def test_bad_records_do_not_change_the_counts_of_good_ones(small_sim: Simulation) -> None:
    recs = list(small_sim.records(20_000))
    metadata = list(small_sim.metadata())
    everything = reference.compute([r.value for r in recs], metadata, NOW)
    good_only = reference.compute([r.value for r in recs if r.bad is None], metadata, NOW)
    assert everything == good_only
    assert sum(v["downloadsAllTime"] for v in everything.values()) > 1_000


def test_events_api_yields_objects_and_raw_bad_lines(small_sim: Simulation) -> None:
    events = list(small_sim.events(3_000))
    assert len(events) == 3_000
    assert all(isinstance(e, dict | bytes) for e in events)
    assert any(isinstance(e, bytes) for e in events)  # bad_json / not_object at 5%


def test_live_mode_starts_at_now_and_follows_the_rate() -> None:
    sim = Simulation(seed=2, repos=300, now=NOW, live_rate=100.0)
    stamps = [r.timestamp_ms for r in sim.records(2_000)]
    start = int(NOW.timestamp() * 1000)
    assert min(stamps) >= start
    # 2,000 events at 100/s span about 20 s of event time (plus session tails)
    assert datetime.fromtimestamp(max(stamps) / 1000, UTC) < NOW + timedelta(hours=1)
