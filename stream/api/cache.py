"""A per-process cache of recent answers, for the listings every client asks for alike.

The top of the last 30 days moves by a few downloads a second, and every dashboard and
Hub page asks for the same few lists; recomputing one costs a read of every shard. An
answer is kept ``ttl`` seconds (one second by default: fresher than any page refreshes),
and concurrent requests for the same key share one computation instead of stampeding
Redis. Each API process has its own: nothing is shared, nothing needs invalidating.

The cache is bounded both in entries and, for values of very different sizes (an
organisation's repo ids), in their total weight: a stream of ever-new keys (cycling
``author`` values) empties it now and then, and never grows it past the bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any


def answer_size(value: Any) -> int:
    """A JSON answer's weight: 1, plus the items of every list in it (not nested deeper)."""
    if isinstance(value, list):
        return 1 + len(value)
    if isinstance(value, dict):
        return 1 + sum(len(v) for v in value.values() if isinstance(v, list))
    return 1


class TtlCache:
    """Values computed less than ``ttl`` seconds ago, by key; ``ttl <= 0`` caches nothing.

    At most ``max_entries`` values, and at most ``max_weight`` in all by ``weigh`` (by
    default :func:`answer_size`: about the repos listed); a value heavier than that alone
    is returned but not kept.
    """

    def __init__(self, ttl: float, max_entries: int = 512, clock: Callable[[], float] = time.monotonic, *,
                 max_weight: int = 100_000, weigh: Callable[[Any], int] = answer_size):
        self.ttl = ttl
        self.max_entries = max_entries
        self.max_weight = max_weight
        self.clock = clock
        self._weigh = weigh
        self._weight = 0
        self._entries: dict[Hashable, tuple[float, Any, int]] = {}
        self._pending: dict[Hashable, asyncio.Future[Any]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def weight(self) -> int:
        """The total weight of the values kept."""
        return self._weight

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[Any]]) -> Any:
        """The cached value of ``key``, or ``compute()``'s (errors are never cached)."""
        if self.ttl <= 0:
            return await compute()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > self.clock():
            return hit[1]
        pending = self._pending.get(key)
        if pending is not None:
            # shield: a waiter whose client went away must not cancel the others' answer
            return await asyncio.shield(pending)
        task = asyncio.ensure_future(compute())
        self._pending[key] = task
        try:
            value = await asyncio.shield(task)
        finally:
            self._pending.pop(key, None)
        self._keep(key, value)
        return value

    def _keep(self, key: Hashable, value: Any) -> None:
        weight = self._weigh(value)
        if weight > self.max_weight:
            return
        stale = self._entries.pop(key, None)
        if stale is not None:
            self._weight -= stale[2]
        if len(self._entries) >= self.max_entries or self._weight + weight > self.max_weight:
            # Crude, but it costs nothing per hit, unlike LRU upkeep; the hot keys return at once.
            self._entries.clear()
            self._weight = 0
        self._entries[key] = (self.clock() + self.ttl, value, weight)
        self._weight += weight
