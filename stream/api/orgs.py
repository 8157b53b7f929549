"""Organisation reads, capped and cached, so that no organisation makes the API slow for all.

An org's index (``hc:org:{org}``) can hold any number of repos. One request reads at most
:data:`MAX_ORG_READ` of them (the index's size itself is exact, from ``SCARD``) and says so
when its answer covers only part of the org. The indexes read are kept for the listing
cache's few seconds in a cache bounded by the repo ids it holds, and at most
:data:`CONCURRENT_READS` org reads run at once: a burst of requests for huge or ever-new
orgs (cycling ``author`` values) waits its turn instead of taking every Redis connection
and the event loop from everyone else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from stream.api.cache import TtlCache
from stream.store.reader import CounterReader

MAX_ORG_READ: Final = 10_000
CACHED_REPO_IDS: Final = 200_000
CONCURRENT_READS: Final = 4


@dataclass(frozen=True, slots=True)
class OrgIndex:
    """An org's repos as read: ``size`` in the index, ``keys`` (``type:org/name``, sorted) read."""

    org: str
    size: int
    keys: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """Whether every repo of the org was read."""
        return len(self.keys) >= self.size


class OrgIndexes:
    """The org indexes of one API process: bounded reads, a bounded cache, few at a time."""

    def __init__(self, reader: CounterReader, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.reader = reader
        self._cache = TtlCache(ttl, max_entries=1024, clock=clock, max_weight=CACHED_REPO_IDS,
                               weigh=lambda index: len(index.keys) + 1)
        self._reads = asyncio.Semaphore(CONCURRENT_READS)

    async def get(self, org: str) -> OrgIndex:
        """The org's index, at most :data:`MAX_ORG_READ` repos of it (``org`` must be validated)."""
        return await self._cache.get(org, lambda: self._read(org))

    async def _read(self, org: str) -> OrgIndex:
        async with self._reads:
            size, repo_keys = await self.reader.org_index(org, MAX_ORG_READ)
        return OrgIndex(org, size, tuple(repo_keys))
