"""The Redis store on its own: replays, straddles, dedupe and the rolling 30-day window."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from stream.counting import Tally
from stream.errors import ConfigError
from stream.store import keys
from stream.store.reader import CounterReader
from stream.store.writer import CounterStore, PartitionRange

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).date()
DAY = TODAY.isoformat()


def run(coro):
    return asyncio.run(coro)


async def _store(url: str, shards: int = 4) -> tuple[CounterStore, CounterReader, aioredis.Redis]:
    client = aioredis.from_url(url)
    store = CounterStore(client, shards, timedelta(days=7))
    await store.ensure_config()
    await store.roll_windows(datetime.now(UTC))
    return store, CounterReader(client), client


def tally(**plain: int) -> Tally:
    return Tally(plain={(f"model:org/{name}", DAY): n for name, n in plain.items()})


@pytest.fixture
def url(settings) -> str:
    return settings.redis_url  # the fixture has flushed Redis


def test_a_replayed_batch_changes_nothing(url):
    async def scenario() -> int:
        store, reader, client = await _store(url)
        ranges = [PartitionRange("events:0", 0, 9)]
        first = await store.apply(tally(a=3), ranges)
        again = await store.apply(tally(a=3), ranges)
        assert {o.status for o in first} == {"ok"} and {o.status for o in again} == {"dup"}
        counts = await reader.repo_counts("model", "org/a", TODAY, TODAY)
        await client.aclose()
        return counts.downloads_all_time
    assert run(scenario()) == 3


def test_a_batch_straddling_the_marker_reports_the_marker_and_applies_nothing(url):
    async def scenario() -> None:
        store, reader, client = await _store(url)
        await store.apply(tally(a=1), [PartitionRange("events:0", 0, 9)])
        outcome, = await store.apply(tally(a=5), [PartitionRange("events:0", 5, 20)])
        assert (outcome.status, outcome.markers) == ("conflict", {"events:0": 9})
        # The caller re-tallies the events after the marker and applies them.
        again, = await store.apply(tally(a=2), [PartitionRange("events:0", 10, 20)], only_shard=outcome.shard)
        assert again.status == "ok"
        counts = await reader.repo_counts("model", "org/a", TODAY, TODAY)
        assert counts.downloads_all_time == 3
        await client.aclose()
    run(scenario())


def test_dataset_requests_count_once_per_user_and_bucket_across_batches(url):
    async def scenario() -> None:
        store, reader, client = await _store(url)
        bucket = int(datetime.now(UTC).timestamp() * 1000) // 300_000
        first = Tally(distinct={("dataset:org/d", DAY, bucket, "u:1"), ("dataset:org/d", DAY, bucket, "u:2")})
        second = Tally(distinct={("dataset:org/d", DAY, bucket, "u:1"), ("dataset:org/d", DAY, bucket + 1, "u:1")})
        await store.apply(first, [PartitionRange("events:0", 0, 1)])
        outcome, = await store.apply(second, [PartitionRange("events:0", 2, 3)])
        assert (outcome.counted, outcome.duplicates) == (1, 1)
        counts = await reader.repo_counts("dataset", "org/d", TODAY, TODAY)
        assert counts.downloads_all_time == 3
        ttl = await client.ttl(keys.seen(outcome.shard, bucket))
        assert 7 * 86_400 < ttl <= 9 * 86_400  # kept through the lateness window, then dropped
        await client.aclose()
    run(scenario())


def test_the_30_day_leaderboard_rolls_days_out(url):
    async def scenario() -> None:
        store, reader, client = await _store(url, shards=1)
        old = (TODAY - timedelta(days=29)).isoformat()
        await store.apply(Tally(plain={("model:org/old", old): 10, ("model:org/new", DAY): 4}),
                          [PartitionRange("events:0", 0, 1)])
        top = await reader.top(("model",), 10, today=TODAY)
        assert [(r.repo, r.downloads) for r in top] == [("org/old", 10), ("org/new", 4)]
        tomorrow = TODAY + timedelta(days=1)
        top = await reader.top(("model",), 10, today=tomorrow)
        assert [(r.repo, r.downloads) for r in top] == [("org/new", 4)]
        all_time = await reader.top(("model",), 10, all_time=True, today=tomorrow)
        assert [(r.repo, r.downloads) for r in all_time] == [("org/old", 10), ("org/new", 4)]
        await client.aclose()
    run(scenario())


def test_a_worker_with_another_shard_count_refuses_to_start(url):
    async def scenario() -> None:
        _, _, client = await _store(url, shards=4)
        with pytest.raises(ConfigError, match="HUBCOUNTER_SHARDS=4"):
            await CounterStore(client, 8, timedelta(days=7)).ensure_config()
        await client.aclose()
    run(scenario())


def test_unknown_repos_read_as_not_found(url):
    async def scenario() -> None:
        _, reader, client = await _store(url)
        assert await reader.repo_counts("model", "org/none", date(2026, 1, 1), TODAY) is None
        await client.aclose()
    run(scenario())


def test_a_reader_notices_the_boards_rolled_since_it_last_read_them(url):
    # A reader remembers each board's window between reads; after the worker rolls the
    # boards, its next read finds the windows moved and plans again instead of
    # correcting a board that no longer needs it (which would subtract a day twice).
    async def scenario() -> None:
        store, reader, client = await _store(url, shards=2)
        old = (TODAY - timedelta(days=29)).isoformat()
        await store.apply(Tally(plain={("model:org/old", old): 10, ("model:org/both", old): 3,
                                       ("model:org/both", DAY): 5, ("model:org/new", DAY): 4}),
                          [PartitionRange("events:0", 0, 1)])
        tomorrow = TODAY + timedelta(days=1)
        want = [("org/both", 5), ("org/new", 4)]
        assert [(r.repo, r.downloads) for r in await reader.top(("model",), 10, today=tomorrow)] == want
        await store.roll_windows(datetime.now(UTC) + timedelta(days=1))
        assert [(r.repo, r.downloads) for r in await reader.top(("model",), 10, today=tomorrow)] == want
        counts = await reader.totals_many(["model:org/both", "model:org/old"], tomorrow)
        assert [(c.downloads, c.downloads_all_time) for c in counts] == [(5, 8), (0, 10)]
        await client.aclose()
    run(scenario())


def test_a_board_never_rolls_back(url):
    # A worker whose clock is a little behind must not move the window back and forth.
    async def scenario() -> None:
        store, _, client = await _store(url, shards=1)
        await store.roll_windows(datetime.now(UTC) + timedelta(days=1))
        await CounterStore(client, 1, timedelta(days=7)).roll_windows(datetime.now(UTC))
        start = await client.hget(keys.meta(0), "model:start")
        assert start.decode() == (TODAY + timedelta(days=1) - timedelta(days=29)).isoformat()
        await client.aclose()
    run(scenario())
