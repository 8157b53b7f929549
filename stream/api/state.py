"""What every request handler shares: the Redis client, the counter reader and the clock.

One :class:`ApiState` lives on ``app.state.api`` for the life of the process; it holds a
connection pool, no counters, so API processes stay interchangeable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import redis.asyncio as aioredis
from fastapi import Request

from stream.api.cache import TtlCache
from stream.api.orgs import OrgIndexes
from stream.store.reader import CounterReader


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class ApiState:
    """The Redis client and reader of one API process, its caches and its clock (tests may fix it).

    ``orgs`` reads organisation indexes, capped and cached for as long as the listings.
    """

    client: aioredis.Redis
    reader: CounterReader
    listings: TtlCache
    clock: Callable[[], datetime] = utc_now
    orgs: OrgIndexes = field(init=False)

    def __post_init__(self) -> None:
        self.orgs = OrgIndexes(self.reader, self.listings.ttl)

    def today(self) -> date:
        """Today's UTC date: the last day of the 30-day window."""
        return self.clock().astimezone(UTC).date()


def get_state(request: Request) -> ApiState:
    """The FastAPI dependency that hands a handler the process's :class:`ApiState`."""
    state: ApiState = request.app.state.api
    return state
