"""Request rate limits: one token bucket per client address and per API token, in Redis.

Every API process takes from the same buckets (one Lua call per request, ``bucket.lua``),
so the limit holds however many processes serve behind the balancer. A bucket holds up
to ``burst`` requests and refills at ``rate`` per second; a request finding it empty is
answered 429 with ``Retry-After``. Requests with a valid token draw from the token's
bucket, all others (no token, or one that is refused) from their address's.

IPv6 clients are limited per /64 network: one host usually holds a whole /64, and a
bucket per address would let it make 2**64 buckets.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from functools import lru_cache

import redis.asyncio as aioredis

from stream.api import keys
from stream.api.lua import script


@dataclass(frozen=True, slots=True)
class Limit:
    """``rate`` requests per second sustained, ``burst`` at once."""

    rate: float
    burst: int


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after: float  # seconds until the request would be allowed (0 when it is)

    @property
    def retry_after_header(self) -> str:
        """Whole seconds, at least 1 (HTTP's ``Retry-After`` has no fractions)."""
        return str(max(1, math.ceil(self.retry_after)))


class RateLimiter:
    """Takes requests from the shared buckets in Redis."""

    def __init__(self, client: aioredis.Redis):
        self._take = client.register_script(script("bucket.lua"))

    async def take(self, bucket: str, limit: Limit, cost: int = 1) -> Verdict:
        """Take ``cost`` requests from ``bucket`` (a key of :func:`stream.api.keys.bucket`).

        A cost above the burst takes the whole burst: it must remain possible at all.
        """
        allowed, wait_ms = await self._take(keys=[bucket], args=[limit.rate, limit.burst, min(cost, limit.burst)])
        return Verdict(bool(allowed), int(wait_ms) / 1000)


@lru_cache(maxsize=4096)
def address_bucket(host: str | None) -> str:
    """The bucket of a client address: the address itself, or its /64 for IPv6."""
    if not host:
        return keys.bucket("a", "unknown")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return keys.bucket("a", "unknown")  # a unix socket or a proxy's odd header: one shared bucket
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return keys.bucket("a", str(address.ipv4_mapped))
        return keys.bucket("a", str(ipaddress.IPv6Network((address, 64), strict=False)))
    return keys.bucket("a", str(address))


def token_bucket(token_id: str) -> str:
    return keys.bucket("t", token_id)
