"""A per-process cache of recent answers, for the listings every client asks for alike.

The top of the last 30 days moves by a few downloads a second, and every dashboard and
Hub page asks for the same few lists; recomputing one costs a read of every shard. An
answer is kept ``ttl`` seconds (one second by default: fresher than any page refreshes),
and concurrent requests for the same key share one computation instead of stampeding
Redis. Each API process has its own: nothing is shared, nothing needs invalidating.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any


class TtlCache:
    """Values computed less than ``ttl`` seconds ago, by key; ``ttl <= 0`` caches nothing."""

    def __init__(self, ttl: float, max_entries: int = 512, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._pending: dict[Hashable, asyncio.Future[Any]] = {}

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
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # a crude bound; the keys are few (type, sort, limit, author)
        self._entries[key] = (self.clock() + self.ttl, value)
        return value
