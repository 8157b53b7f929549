"""The Redis store on its own: replays, straddles, dedupe and the rolling 30-day window."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from stream.counting import Tally
from stream.errors import ConfigError
from stream.store import keys
from stream.store.markers import plan_start, read_markers, write_markers
from stream.store.ranking import Board, top_entries
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


def span(start: int, end: int, base: int = 0) -> list[PartitionRange]:
    """One partition's positions [start, end); a shard without a marker stands at ``base``."""
    return [PartitionRange("events:0", start, end, base)]


def of(outcomes: list, repo_key: str, shards: int = 4):
    """The outcome of the shard ``repo_key`` lives in (every shard answers every batch)."""
    return next(o for o in outcomes if o.shard == keys.shard_of(repo_key, shards))


@pytest.fixture
def url(settings) -> str:
    return settings.redis_url  # the fixture has flushed Redis


def test_a_replayed_batch_changes_nothing(url):
    async def scenario() -> int:
        store, reader, client = await _store(url)
        ranges = span(0, 10)
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
        await store.apply(tally(a=1), span(0, 10))
        outcome = of(await store.apply(tally(a=5), span(5, 21)), "model:org/a")
        assert (outcome.status, outcome.markers) == ("conflict", {"events:0": 10})
        # The caller re-tallies the events from the marker on and applies them.
        again, = await store.apply(tally(a=2), span(10, 21), only_shard=outcome.shard)
        assert again.status == "ok"
        counts = await reader.repo_counts("model", "org/a", TODAY, TODAY)
        assert counts.downloads_all_time == 3
        await client.aclose()
    run(scenario())


def test_dataset_requests_count_once_per_user_and_bucket_across_batches(url):
    async def scenario() -> None:
        store, reader, client = await _store(url)
        bucket = int(datetime.now(UTC).timestamp() * 1000) // 300_000
        first = Tally(distinct={("dataset:org/d", DAY, bucket, "u:1"): None,
                                ("dataset:org/d", DAY, bucket, "u:2"): None})
        second = Tally(distinct={("dataset:org/d", DAY, bucket, "u:1"): None,
                                 ("dataset:org/d", DAY, bucket + 1, "u:1"): None})
        await store.apply(first, span(0, 2))
        outcome = of(await store.apply(second, span(2, 4)), "dataset:org/d")
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
                          span(0, 2))
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
                          span(0, 2))
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


def test_every_batch_moves_every_shards_marker(url):
    # A batch with downloads for one shard still moves the others' markers, so that all
    # shards agree on how far they hold the partition (and a lost write shows at once).
    async def scenario() -> None:
        store, _, client = await _store(url)
        await store.apply(tally(a=1), span(0, 7))
        markers = [await client.hget(keys.position(shard), "events:0") for shard in range(4)]
        assert markers == [b"7"] * 4
        await client.aclose()
    run(scenario())


def test_a_shard_behind_the_batch_applies_nothing_and_says_so(url):
    # Redis lost writes: one shard holds the partition only up to 4 (a restored snapshot,
    # a failover). The next batch [10, 20) must not count there; the shard reports what it
    # holds, and the others take the batch.
    async def scenario() -> None:
        store, reader, client = await _store(url)
        await store.apply(tally(a=1, b=1), span(0, 10))
        lagging = keys.shard_of("model:org/a", 4)
        await client.hset(keys.position(lagging), "events:0", 4)
        outcomes = await store.apply(tally(a=1, b=1), span(10, 20))
        behind = of(outcomes, "model:org/a")
        assert (behind.status, behind.markers, behind.behind) == ("gap", {"events:0": 4}, {"events:0"})
        assert {o.status for o in outcomes if o.shard != lagging} == {"ok"}
        assert (await reader.repo_counts("model", "org/a", TODAY, TODAY)).downloads_all_time == 1
        # Counting again from what the shard holds: it takes [4, 20), the others skip it.
        replayed = await store.apply(tally(a=2, b=2), span(4, 20))
        assert of(replayed, "model:org/a").status == "ok"
        assert {o.status for o in replayed if o.shard != lagging} == {"dup"}
        await client.aclose()
    run(scenario())


def test_a_shard_without_markers_is_behind_unless_the_batch_starts_at_the_base(url):
    # A shard that lost everything has no marker: behind any batch but one that starts
    # where counting the partition started (the base).
    async def scenario() -> None:
        store, _, client = await _store(url)
        await store.apply(tally(a=1), span(0, 10))
        emptied = keys.shard_of("model:org/a", 4)
        await client.delete(keys.position(emptied))
        behind = of(await store.apply(tally(a=1), span(10, 20)), "model:org/a")
        assert (behind.status, behind.markers, behind.behind) == ("gap", {"events:0": -1}, {"events:0"})
        again = of(await store.apply(tally(a=2), span(0, 20)), "model:org/a")
        assert again.status == "ok"
        await client.aclose()
    run(scenario())


def test_markers_of_the_earlier_layout_are_carried_over(url):
    # hc:{N}:applied held the last offset applied, moved only for the shards a batch
    # touched; the group committed after applying. Positions follow from both.
    async def scenario() -> None:
        _, _, client = await _store(url)
        await client.hset(keys.legacy_applied(0), "events:0", 41)
        await client.hset(keys.legacy_applied(2), "events:0", 19)
        positions, legacy = (await read_markers(client, 4, ["events:0"]))["events:0"]
        assert (positions, legacy) == ([None] * 4, [41, None, 19, None])
        plan = plan_start(positions, legacy, committed=30, log_start=0)
        await write_markers(client, "events:0", plan.write)
        assert (await read_markers(client, 4, ["events:0"]))["events:0"][0] == [42, 30, 30, 30]
        assert plan.start == 30
        await client.aclose()
    run(scenario())


def test_min_replicas_waits_and_counts_what_no_replica_confirmed(url):
    # The test Redis has no replica: WAIT 1 times out, the batch is applied all the same
    # and the store counts the masters that could not confirm it.
    async def scenario() -> None:
        client = aioredis.from_url(url)
        store = CounterStore(client, 2, timedelta(days=7), min_replicas=1, replica_wait_ms=50)
        await store.ensure_config()
        assert {o.status for o in await store.apply(tally(a=1), span(0, 1))} == {"ok"}
        assert store.unreplicated == 1  # one Redis, one WAIT
        await client.aclose()
    run(scenario())


def test_the_top_read_a_few_entries_per_board_equals_the_brute_force_top(url):
    # Random shards' boards, some to be corrected by days entering and leaving the window
    # (a reader's day the boards were not rolled to): the threshold read must rank like
    # summing everything. Ties at the cut may pick other members, never other values.
    async def scenario(seed: int) -> None:
        rng = random.Random(seed)
        client = aioredis.from_url(url)
        await client.flushall()
        boards, truth = [], {}
        for b in range(rng.randint(1, 6)):
            members = [f"b{b}-{i}" for i in range(rng.randint(0, 40))]
            days = {d: {m: rng.randint(1, 5) for m in members if rng.random() < 0.5}
                    for d in ("kept", "leaving", "entering")}
            for name, scores in days.items():
                if scores:
                    await client.zadd(f"{b}:{name}", scores)
            board = {m: days["kept"].get(m, 0) + days["leaving"].get(m, 0) for m in members}
            if any(board.values()):
                await client.zadd(f"{b}:board", {m: v for m, v in board.items() if v})
            corrected = rng.random() < 0.7
            boards.append(Board(f"{b}:board", (f"{b}:entering",), (f"{b}:leaving",)) if corrected
                          else Board(f"{b}:board"))
            for m in members:
                truth[m] = board[m] + (days["entering"].get(m, 0) - days["leaving"].get(m, 0) if corrected else 0)

        async def execute(queue):
            async with client.pipeline(transaction=False) as pipe:
                queue(pipe)
                return list(await pipe.execute())

        limit = rng.randint(1, 30)
        got = await top_entries(execute, boards, limit)
        want = sorted((v for v in truth.values() if v > 0), reverse=True)[:limit]
        assert [v for v, _ in got] == want, seed
        assert all(truth[m] == v for v, m in got), seed
        await client.aclose()

    for seed in range(60):
        run(scenario(seed))
