"""The reference's analytics over small logs: the yardstick the worker's breakdowns meet."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from stream.reference import run
from stream.reference.analytics import Analytics, country_of, folded

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
HUB = "huggingface_hub/0.27.1; python/3.12.7; transformers/4.46.3"


def line(path: str = "config.json", *, repo: str = "org/m", repo_type: str = "model", agent: str = HUB,
         country: str | None = "DE", user: str | None = "u1", minute: int = 0) -> bytes:
    event = {"timestamp": f"2026-11-21T10:{minute:02d}:00Z", "method": "GET", "status": 200, "repoType": repo_type,
             "repoName": repo, "path": path, "userAgent": agent, "country": country, "hashedUserId": user}
    return orjson.dumps({k: v for k, v in event.items() if v is not None})


def analytics_of(*lines: bytes, metadata=None) -> dict:
    collected = Analytics()
    run(lines, metadata, NOW, analytics=collected)
    return collected.shape()


def test_each_counted_download_has_one_value_per_dimension():
    shape = analytics_of(line(), line(agent=f"{HUB}; ci/true", user="u2"), line("x.gguf", agent="llama-cpp",
                         country="zz", user=None))
    day = shape["model:org/m"]["2026-11-21"]
    assert day["class"] == {"other": 2, "ci": 1}
    assert day["client"] == {"transformers": 2, "llama.cpp": 1}
    assert day["country"] == {"DE": 2, "unknown": 1}
    assert day["file"] == {"config.json": 2, "x.gguf": 1}
    assert day["uniques"] == 2  # u1, u2; the anonymous download counts but is nobody to count once


def test_rejected_model_candidates_are_uncounted_with_their_library():
    metadata = {"model:org/clip": {"library_name": "open_clip"}}
    shape = analytics_of(line(repo="org/clip"), line(repo="org/clip"), metadata=metadata)
    day = shape["model:org/clip"]["2026-11-21"]
    assert day["uncounted"] == {"config.json": 2} and day["library"] == "open_clip"
    assert all(not values for name, values in day.items() if name in ("class", "client", "country", "file"))


def test_a_dataset_download_is_its_slots_first_request():
    shape = analytics_of(line("a.parquet", repo="org/d", repo_type="dataset", country="JP"),
                         line("b.parquet", repo="org/d", repo_type="dataset", country="US", minute=1))
    assert shape["dataset:org/d"]["2026-11-21"]["file"] == {"a.parquet": 1}


def test_folding_keeps_the_top_values_and_sums_the_rest():
    assert folded({"a": 5, "b": 3, "c": 3, "d": 1}, 2) == {"a": 5, "b": 3, "": 4}
    assert folded({"a": 1}, 2) == {"a": 1}


@pytest.mark.parametrize(("sent", "counted"), [("US", "US"), ("de", "DE"), ("Fr", "FR"), ("XX", "unknown"),
                                               ("USA", "unknown"), (None, "unknown")])
def test_countries_are_iso_codes_in_any_case(sent, counted):
    assert country_of(sent) == counted
