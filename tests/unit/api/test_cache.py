"""The listing cache: fresh answers for ``ttl`` seconds, one computation at a time, no cached errors."""

from __future__ import annotations

import asyncio

import pytest

from stream.api.cache import TtlCache, answer_size

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_is_reused_until_it_is_ttl_old() -> None:
    clock, calls = Clock(), []

    async def compute() -> int:
        calls.append(1)
        return len(calls)

    async def run() -> list[int]:
        cache = TtlCache(1.0, clock=clock)
        first = await cache.get("k", compute)
        clock.now += 0.9
        second = await cache.get("k", compute)
        clock.now += 0.2
        third = await cache.get("k", compute)
        return [first, second, third]

    assert asyncio.run(run()) == [1, 1, 2]


def test_concurrent_requests_share_one_computation() -> None:
    # A burst of identical listings reads Redis once, not once per request.
    calls = []

    async def compute() -> str:
        calls.append(1)
        await asyncio.sleep(0.01)
        return "top"

    async def run() -> list[str]:
        cache = TtlCache(1.0)
        return await asyncio.gather(*(cache.get("k", compute) for _ in range(20)))

    assert asyncio.run(run()) == ["top"] * 20
    assert len(calls) == 1


def test_errors_are_not_cached() -> None:
    attempts = []

    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("redis down")
        return "ok"

    async def run() -> str:
        cache = TtlCache(1.0)
        with pytest.raises(ConnectionError):
            await cache.get("k", flaky)
        return await cache.get("k", flaky)

    assert asyncio.run(run()) == "ok"


def test_zero_ttl_always_computes() -> None:
    calls = []

    async def compute() -> int:
        calls.append(1)
        return 1

    async def run() -> None:
        cache = TtlCache(0)
        for _ in range(3):
            await cache.get("k", compute)

    asyncio.run(run())
    assert len(calls) == 3


def test_cycling_keys_never_grow_the_cache_past_its_bounds() -> None:
    # Ever-new keys (cycling author= values) with answers of every size: entries and weight stay bounded.
    async def run() -> TtlCache:
        cache = TtlCache(60.0, max_entries=50, max_weight=1_000)
        for i in range(5_000):
            size = i % 300

            async def compute(size: int = size) -> list[int]:
                return list(range(size))

            assert len(await cache.get(("author", i), compute)) == size
            assert len(cache) <= 50 and cache.weight <= 1_000
        return cache

    assert len(asyncio.run(run())) > 0


def test_an_answer_heavier_than_the_whole_cache_is_returned_not_kept() -> None:
    async def run() -> tuple[int, int]:
        cache = TtlCache(60.0, max_weight=10)
        answer = await cache.get("big", lambda: asyncio.sleep(0, result=list(range(50))))
        return len(answer), len(cache)

    assert asyncio.run(run()) == (50, 0)


def test_answers_weigh_what_they_list() -> None:
    assert answer_size([1, 2, 3]) == 4
    assert answer_size({"id": "org", "top": [1, 2], "reposByType": {"model": 2}}) == 3
    assert answer_size(None) == 1
