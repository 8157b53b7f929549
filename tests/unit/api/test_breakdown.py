"""The CSV breakdown is written chunk by chunk, in the Hub's format."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Sequence

import pytest

from stream.api.breakdown import breakdown_rows, day_timestamp
from stream.store.reader import RepoCounts

pytestmark = pytest.mark.unit


class FakeReader:
    """Answers days_many from a dict and records how many repos each call asked for."""

    def __init__(self, counts: dict[str, dict[str, int]]):
        self.counts = counts
        self.calls: list[int] = []

    async def days_many(self, repo_keys: Sequence[str], days: Sequence[str] | None) -> list[RepoCounts]:
        self.calls.append(len(repo_keys))
        out = []
        for key in repo_keys:
            repo_type, _, repo = key.partition(":")
            per_day = self.counts[key]
            daily = dict(sorted(per_day.items())) if days is None else {d: per_day.get(d, 0) for d in days}
            out.append(RepoCounts(repo_type, repo, sum(daily.values()), sum(per_day.values()), daily))
        return out


def collect(reader: FakeReader, keys: list[str], days: list[str] | None, chunk: int) -> list[str]:
    async def run() -> list[str]:
        return [piece async for piece in breakdown_rows(reader, keys, days, chunk)]  # type: ignore[arg-type]
    return asyncio.run(run())


def test_rows_are_read_and_sent_a_chunk_at_a_time() -> None:
    # 450 repos in chunks of 200: three reads, three pieces of body, never all at once.
    keys = [f"model:org/m{i:03d}" for i in range(450)]
    reader = FakeReader({k: {"2026-11-22": 1} for k in keys})
    pieces = collect(reader, keys, None, chunk=200)
    assert reader.calls == [200, 200, 50]
    assert len(pieces) == 3
    rows = list(csv.reader(io.StringIO("".join(pieces))))
    assert rows[0] == ["repoType", "repoName", "total", "timestamp", "downloads"]
    assert len(rows) == 451


def test_only_days_with_downloads_become_rows_with_the_all_time_total() -> None:
    reader = FakeReader({"dataset:org/d": {"2026-11-20": 3, "2026-11-21": 0, "2026-11-22": 2},
                         "model:org/m": {"2026-11-01": 7}})
    text = "".join(collect(reader, ["dataset:org/d", "model:org/m"], None, chunk=10))
    assert list(csv.reader(io.StringIO(text)))[1:] == [
        ["dataset", "org/d", "5", "2026-11-20T00:00:00.000Z", "3"],
        ["dataset", "org/d", "5", "2026-11-22T00:00:00.000Z", "2"],
        ["model", "org/m", "7", "2026-11-01T00:00:00.000Z", "7"],
    ]


def test_a_range_restricts_the_days_but_not_the_total() -> None:
    reader = FakeReader({"model:org/m": {"2026-11-01": 7, "2026-11-22": 1}})
    text = "".join(collect(reader, ["model:org/m"], ["2026-11-22"], chunk=10))
    assert list(csv.reader(io.StringIO(text)))[1:] == [["model", "org/m", "8", "2026-11-22T00:00:00.000Z", "1"]]


def test_no_repos_still_gives_the_header() -> None:
    assert collect(FakeReader({}), [], None, chunk=10) == ["repoType,repoName,total,timestamp,downloads\r\n"]


def test_timestamps_are_utc_midnight_with_milliseconds() -> None:
    assert day_timestamp("2026-11-22") == "2026-11-22T00:00:00.000Z"
