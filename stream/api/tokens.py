"""API tokens: what one looks like, where it is kept, and how a request's token is checked.

A token is ``hct_<id>_<secret>``: a 16-hex-digit id, which names it in Redis and in the
rate limiter, and 32 random bytes. Redis keeps, per id, the token's name, the
organisations it covers (``*``: every one), when it was made, when it expires, and the
SHA-256 of the whole token; never the token itself, which ``hubcounter tokens create``
prints once. A request's token is found by its id and accepted when the SHA-256 of what
it sent equals the stored one (compared in constant time) and it has not expired.

Each API process keeps what it read about a token for ``cache_seconds`` (5 s by default):
a revoked token stops working on every process within that time, without a Redis read
per request. Expiry is checked on every request against the clock, never cached.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import orjson
import redis.asyncio as aioredis

from stream.api import keys
from stream.api.lua import script
from stream.errors import ConfigError

PREFIX: Final = "hct_"
ALL_ORGS: Final = "*"
MAX_CACHED: Final = 10_000
_TOKEN = re.compile(r"hct_([0-9a-f]{16})_[A-Za-z0-9_-]{43}")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_DURATION = re.compile(r"([1-9][0-9]{0,5})([mhdw])")
_UNITS: Final = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


@dataclass(frozen=True, slots=True)
class Token:
    """What Redis holds about one token (everything but the token)."""

    token_id: str
    name: str
    orgs: tuple[str, ...]
    created: datetime
    expires: datetime | None
    digest: str  # SHA-256 of the whole token, hex

    def covers(self, org: str | None) -> bool:
        """Whether this token may read ``org``'s private data (None: data of no organisation)."""
        return ALL_ORGS in self.orgs or (org is not None and org in self.orgs)

    def expired(self, now: datetime) -> bool:
        return self.expires is not None and now >= self.expires

    def record(self) -> bytes:
        """The JSON kept in Redis."""
        return orjson.dumps({"name": self.name, "orgs": list(self.orgs), "created": self.created.isoformat(),
                             "expires": self.expires.isoformat() if self.expires else None,
                             "sha256": self.digest})

    @classmethod
    def from_record(cls, token_id: str, raw: bytes | str) -> Token:
        data = orjson.loads(raw)
        return cls(token_id, data["name"], tuple(data["orgs"]), datetime.fromisoformat(data["created"]),
                   datetime.fromisoformat(data["expires"]) if data["expires"] else None, data["sha256"])


def digest(token: str) -> str:
    """The SHA-256 of a token, hex: what Redis keeps in its place."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_id_of(token: str) -> str | None:
    """The id of a well-formed token; None for anything else (checked before any Redis call)."""
    found = _TOKEN.fullmatch(token)
    return found.group(1) if found else None


def bearer(header: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header value ('' when it is no bearer token)."""
    scheme, _, value = header.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def new_token() -> tuple[str, str]:
    """A fresh token and its id."""
    token_id = secrets.token_hex(8)
    return f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}", token_id


def parse_expiry(value: str) -> timedelta | None:
    """``90d``, ``12h``, ``30m``, ``2w``, or ``never`` (None)."""
    if value == "never":
        return None
    found = _DURATION.fullmatch(value)
    if not found:
        raise ConfigError(f"invalid expiry {value!r}: expected a number and a unit (m, h, d, w), e.g. 90d, or never")
    return int(found.group(1)) * _UNITS[found.group(2)]


def check_token_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ConfigError(f"invalid token name {name!r}: 1 to 64 letters, digits, '-', '_' or '.'")
    return name


class TokenStore:
    """The tokens in Redis (keys in :mod:`stream.api.keys`): create, find, list, revoke."""

    def __init__(self, client: aioredis.Redis):
        self.client = client
        self._create = client.register_script(script("token_create.lua"))
        self._revoke = client.register_script(script("token_revoke.lua"))

    async def create(self, orgs: Sequence[str], name: str | None = None, expires_in: timedelta | None = None,
                     now: datetime | None = None) -> tuple[str, Token]:
        """A new token covering ``orgs``: the token (shown once) and what is stored about it.

        ``name`` defaults to the token's id; a name already in use is a ConfigError.
        ``expires_in`` None: it never expires. ``now`` is the creation time (UTC).
        """
        if not orgs:
            raise ConfigError("a token needs at least one organisation (or * for every one)")
        token, token_id = new_token()
        created = (now or datetime.now(UTC)).astimezone(UTC)
        stored = Token(token_id, check_token_name(name or token_id), tuple(dict.fromkeys(orgs)), created,
                       created + expires_in if expires_in is not None else None, digest(token))
        if not await self._create(keys=[keys.TOKENS, keys.TOKEN_NAMES], args=[token_id, stored.name, stored.record()]):
            raise ConfigError(f"a token named {stored.name!r} exists already: revoke it first or choose another name")
        return token, stored

    async def find(self, token_id: str) -> Token | None:
        raw = await self.client.hget(keys.TOKENS, token_id)
        return Token.from_record(token_id, raw) if raw is not None else None

    async def all(self) -> list[Token]:
        """Every stored token, expired ones included, oldest first."""
        found = await self.client.hgetall(keys.TOKENS)
        tokens = [Token.from_record(k.decode() if isinstance(k, bytes) else k, v) for k, v in found.items()]
        return sorted(tokens, key=lambda t: (t.created, t.name))

    async def revoke(self, name: str) -> bool:
        """Delete the token named ``name``; False when there is none."""
        return bool(await self._revoke(keys=[keys.TOKENS, keys.TOKEN_NAMES], args=[name]))


class TokenVerifier:
    """Checks a request's token; remembers what Redis said for ``cache_seconds`` per process."""

    def __init__(self, store: TokenStore, cache_seconds: float, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.store = store
        self.cache_seconds = cache_seconds
        self.clock = clock
        self.wall = wall
        self._seen: dict[str, tuple[float, Token | None]] = {}

    async def verify(self, token: str) -> Token | None:
        """The stored token when ``token`` is one, unexpired; None otherwise.

        Redis errors propagate: a token that cannot be checked is not accepted.
        """
        token_id = token_id_of(token)
        if token_id is None:
            return None
        hit = self._seen.get(token_id)
        if hit is not None and hit[0] > self.clock():
            stored = hit[1]
        else:
            stored = await self.store.find(token_id)
            if self.cache_seconds > 0:
                if len(self._seen) >= MAX_CACHED:
                    self._seen.clear()  # ids are random: a flood of made-up ones must not grow this
                self._seen[token_id] = (self.clock() + self.cache_seconds, stored)
        if stored is None or not hmac.compare_digest(stored.digest, digest(token)):
            return None
        return None if stored.expired(self.wall()) else stored
