"""What every request handler shares: the Redis client, the counter reader and the clock.

One :class:`ApiState` lives on ``app.state.api`` for the life of the process; it holds a
Redis client, no counters, so API processes stay interchangeable. The client is made on
the first request that needs it (whether ``REDIS_URL`` names a cluster is asked then),
so the API starts, and says it is not ready, while Redis is away.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from fastapi import Request

from stream.api.cache import TtlCache
from stream.api.orgs import OrgIndexes
from stream.rules.registry import Registry
from stream.store.analytics import OTHER, AnalyticsReader
from stream.store.connect import LazyClient, RedisConfig
from stream.store.reader import CounterReader


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class ApiState:
    """The Redis client and reader of one API process, its caches and its clock (tests may fix it).

    ``orgs`` reads organisation indexes, capped and cached for as long as the listings.
    """

    redis: RedisConfig
    listings: TtlCache
    registry: Registry
    clock: Callable[[], datetime] = utc_now
    orgs: OrgIndexes = field(init=False)
    client: LazyClient = field(init=False)
    _reader: CounterReader | None = None

    def __post_init__(self) -> None:
        self.client = LazyClient(self.redis)
        self.orgs = OrgIndexes(self.reader, self.listings.ttl)

    async def reader(self) -> CounterReader:
        """The counter reader, connecting first if no request has yet (StoreUnavailable while
        Redis is away). Handlers ask for it once their input is checked, so bad input is a
        400 even when Redis is down."""
        client = await self.client()
        if self._reader is None or self._reader.client is not client:
            self._reader = CounterReader(client)
        return self._reader

    async def analytics(self) -> AnalyticsReader:
        """The analytics reads, on the counter reader (connecting first, like :meth:`reader`)."""
        return AnalyticsReader(await self.reader())

    def explain_uncounted(self, library: str | None, path: str) -> str:
        """Why a request for ``path`` in a model of ``library`` does not count, in words."""
        if path == OTHER:
            return "other paths, fewer requests each (summed)"
        return self.registry.explain(library, path).reason

    def today(self) -> date:
        """Today's UTC date: the last day of the 30-day window."""
        return self.clock().astimezone(UTC).date()

    async def aclose(self) -> None:
        await self.client.aclose()
        self._reader = None


def get_state(request: Request) -> ApiState:
    """The FastAPI dependency that hands a handler the process's :class:`ApiState`."""
    state: ApiState = request.app.state.api
    return state
