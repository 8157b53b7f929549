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
    assert tally.distinct == {("dataset:org/d", "2026-11-21", bucket, "u"): None}
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


# --- analytics: what each download says, and what did not count --------------------------

HUB_UA = "huggingface_hub/0.27.1; python/3.12.7; torch/2.4.1; transformers/4.46.3"


@pytest.fixture(scope="module")
def analyst() -> Counter:
    from stream.classes import load_classifier
    from stream.facets import Facets

    return Counter(load_registry(), LIBRARIES.get, timedelta(days=7), Facets(load_classifier()))


def visit(repo: str = "org/m", path: str = "config.json", *, repo_type: str = "model", user: str | None = "u:1",
          agent: str | None = HUB_UA, country: str | None = "DE", ts_ms: int = NOW_MS) -> FileRequest:
    return FileRequest(ts_ms, "GET", 200, repo_type, repo, path, None, user, agent, country)  # type: ignore[arg-type]


def test_every_counted_download_has_one_class_client_country_and_file(analyst):
    tally = tally_of(analyst, visit(), visit(agent=f"{HUB_UA}; ci/true"), visit(country="fr"),
                     visit("org/m", "model-q4_k_m.gguf", agent="llama-cpp", country=None, user=None))
    day = "2026-11-21"
    assert tally.plain == {("model:org/m", day): 4}
    # every dimension (class c:, client k:, country g:, file f:) sums to the count
    assert tally.breakdown == {("model:org/m", day): {
        "c:other": 3, "c:ci": 1, "k:transformers": 3, "k:llama.cpp": 1, "g:DE": 2, "g:FR": 1, "g:unknown": 1,
        "f:config.json": 3, "f:model-q4_k_m.gguf": 1,
    }}
    # the anonymous request counts, but has no downloader to count once
    assert tally.downloaders == {("model:org/m", day): {"u:1"}}


def test_a_country_that_is_no_iso_code_is_unknown(analyst):
    tally = tally_of(analyst, visit(country="XX"), visit(country="Germany"), visit(country="us"))
    [fields] = tally.breakdown.values()
    assert sorted(name for name in fields if name.startswith("g:")) == ["g:US", "g:unknown"]


def test_model_candidates_the_rule_refuses_are_kept_with_their_library(analyst):
    # open_clip counts its four weight files only: a config.json request is a missed candidate.
    tally = tally_of(analyst, visit("org/clip", "config.json"), visit("org/clip", "config.json"),
                     visit("org/m", "pytorch_model.bin"), visit("org/m", "README.md", user=None))
    day = "2026-11-21"
    assert tally.uncounted == {("model:org/clip", day): {"config.json": 2},
                               ("model:org/m", day): {"pytorch_model.bin": 1, "README.md": 1}}
    assert tally.libraries == {"model:org/clip": "open_clip", "model:org/m": None}
    assert not tally.plain and not tally.breakdown


def test_non_candidates_are_not_uncounted_downloads(analyst):
    # a 404 or a POST was never a download to miss
    tally = Tally()
    for event in (FileRequest(NOW_MS, "GET", 404, "model", "org/m", "x.bin", None, "u"),  # type: ignore[arg-type]
                  FileRequest(NOW_MS, "POST", 200, "model", "org/m", "x.bin", None, "u")):  # type: ignore[arg-type]
        analyst.add(event, tally, analyst.window(NOW))
    assert not tally


def test_a_dataset_slot_keeps_the_facets_of_its_first_request(analyst):
    # Deduplicated per user and 5 minutes: the request that opens the slot is the download.
    tally = tally_of(analyst, visit("org/d", "a.parquet", repo_type="dataset", country="JP"),
                     visit("org/d", "b.parquet", repo_type="dataset", country="US"))
    [(slot, facet)] = tally.distinct.items()
    assert facet == ("c:other", "k:transformers", "g:JP", "f:a.parquet")
    assert slot[3] == "u:1"
