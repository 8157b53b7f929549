"""Counting semantics of one batch, without Kafka or Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stream.counting import Counter, Tally, day_name
from stream.errors import EventError
from stream.events import FileRequest
from stream.rules import load_registry

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
LIBRARIES = {"model:org/clip": "open_clip", "model:org/peft": "peft"}


@pytest.fixture(scope="module")
def counter() -> Counter:
    return Counter(load_registry(), LIBRARIES.get, timedelta(days=7))


def request(repo: str = "org/m", path: str = "config.json", *, repo_type: str = "model",
            method: str = "GET", status: int = 200, ts_ms: int = NOW_MS, user: str | None = "u") -> FileRequest:
    return FileRequest(ts_ms, method, status, repo_type, repo, path, None, user)  # type: ignore[arg-type]


def tally_of(counter: Counter, *events: FileRequest) -> Tally:
    tally = Tally()
    for event in events:
        counter.add(event, tally, counter.window(NOW))
    return tally


def test_get_and_head_on_a_query_file_count_per_utc_day(counter):
    tally = tally_of(counter, request(), request(method="HEAD"), request(ts_ms=NOW_MS - 86_400_000))
    assert tally.plain == {("model:org/m", "2026-11-21"): 2, ("model:org/m", "2026-11-20"): 1}


@pytest.mark.parametrize(("method", "status", "outcome"), [
    ("POST", 200, "method"), ("GET", 404, "status"), ("GET", 500, "status"), ("HEAD", 199, "status"),
    ("GET", 206, "counted"), ("GET", 302, "counted"), ("GET", 304, "counted"), ("GET", 307, "counted"),
    ("GET", 399, "counted"),
])
def test_only_get_and_head_with_status_200_to_399_are_candidates(counter, method, status, outcome):
    assert counter.add(request(method=method, status=status), Tally(), counter.window(NOW)) == outcome


def test_the_repo_library_picks_the_rule(counter):
    tally = tally_of(counter, request("org/clip", "open_clip_model.safetensors"),
                     request("org/clip", "config.json"), request("org/peft", "adapter_config.json"),
                     request("org/m", "adapter_config.json"))
    assert tally.plain == {("model:org/clip", "2026-11-21"): 1, ("model:org/peft", "2026-11-21"): 1}


def test_spaces_never_count(counter):
    assert counter.add(request(repo_type="space"), Tally(), counter.window(NOW)) == "space"


def test_dataset_requests_with_a_user_await_dedupe_and_anonymous_ones_count_alone(counter):
    tally = tally_of(counter, request("org/d", "a.parquet", repo_type="dataset"),
                     request("org/d", "b.parquet", repo_type="dataset"),
                     request("org/d", "b.parquet", repo_type="dataset", user=None),
                     request("org/d", "c.parquet", repo_type="dataset", user=None))
    bucket = NOW_MS // 300_000
    assert tally.distinct == {("dataset:org/d", "2026-11-21", bucket, "u")}
    assert tally.plain == {("dataset:org/d", "2026-11-21"): 2}


def test_dedupe_buckets_are_epoch_aligned_five_minutes(counter):
    edge = (NOW_MS // 300_000 + 1) * 300_000
    tally = tally_of(counter, request("d", "x", repo_type="dataset", ts_ms=edge - 1),
                     request("d", "x", repo_type="dataset", ts_ms=edge))
    assert {entry[2] for entry in tally.distinct} == {edge // 300_000 - 1, edge // 300_000}


def test_events_outside_the_lateness_window_are_rejected(counter):
    window = counter.window(NOW)
    counter.add(request(ts_ms=NOW_MS - 7 * 86_400_000), Tally(), window)  # exactly 7 days: kept
    counter.add(request(ts_ms=NOW_MS + 3_600_000), Tally(), window)  # exactly 1 h ahead: kept
    with pytest.raises(EventError, match="too_late"):
        counter.add(request(ts_ms=NOW_MS - 7 * 86_400_000 - 1), Tally(), window)
    with pytest.raises(EventError, match="too_early"):
        counter.add(request(ts_ms=NOW_MS + 3_600_001), Tally(), window)


def test_day_names_are_utc_dates():
    assert day_name(NOW_MS) == "2026-11-21"
    assert day_name(int(datetime(2026, 11, 21, 23, 59, 59, 999_000, tzinfo=UTC).timestamp() * 1000)) == "2026-11-21"
    assert day_name(int(datetime(2026, 11, 22, tzinfo=UTC).timestamp() * 1000)) == "2026-11-22"
