"""The Redis side of counting: apply a batch's tally together with its offsets.

Each shard gets one Lua call per batch (``lua/apply.lua``), all of them sent in one
pipelined round trip. A shard's call is atomic and idempotent per source partition, so
a replayed batch (after a crash, a rebalance or a lost commit) is skipped, and a batch
that straddles what was already applied is re-tallied by the caller for the events
after the returned markers (:meth:`CounterStore.apply` returns them as conflicts).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from stream.counting import DAY_MS, DEDUPE_BUCKET_MS, Tally
from stream.errors import ConfigError, StoreRefused, StoreUnavailable
from stream.store import keys

_pack = msgspec.msgpack.Encoder().encode
_DIGEST_BYTES = 12
_FIXSTR_12 = bytes([0xA0 | _DIGEST_BYTES])


def _dedupe_member(repo_key: str, user: str) -> msgspec.Raw:
    """The 12-byte digest of (dataset, user), as a msgpack string.

    Redis's Lua msgpack decoder predates the msgpack ``bin`` type, so the raw digest
    travels as a fixed-length string: Lua strings are byte strings.
    """
    digest = hashlib.blake2b(f"{repo_key}\0{user}".encode(), digest_size=_DIGEST_BYTES).digest()
    return msgspec.Raw(_FIXSTR_12 + digest)


# Redis is away or not serving writes yet (loading, a replica, a cluster changing hands):
# waiting helps. Anything else that fails a call is a bug and propagates as it is.
_AWAY = (redis_errors.ConnectionError, redis_errors.TimeoutError, redis_errors.ReadOnlyError,
         redis_errors.TryAgainError, redis_errors.ClusterDownError, OSError)
# Redis refuses the write for a reason an operator must fix.
_REFUSED = (redis_errors.OutOfMemoryError, redis_errors.NoPermissionError)
_REFUSED_PREFIXES = ("MISCONF", "NOREPLICAS")


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """Turn Redis failures into StoreUnavailable (retry) or StoreRefused (needs an operator)."""
    try:
        yield
    except _AWAY as exc:
        raise StoreUnavailable(f"Redis unavailable: {exc}") from exc
    except _REFUSED as exc:
        raise StoreRefused(f"Redis refuses writes: {exc}") from exc
    except redis_errors.ResponseError as exc:
        if str(exc).startswith(_REFUSED_PREFIXES):
            raise StoreRefused(f"Redis refuses writes: {exc}") from exc
        raise


def lua_script(name: str) -> str:
    """The text of one of the store's Lua scripts (``apply.lua``, ``roll.lua``)."""
    return resources.files("stream.store").joinpath("lua", name).read_text()


@dataclass(frozen=True, slots=True)
class PartitionRange:
    """The offsets [first, last] one batch holds for one source partition."""

    field: str  # "topic:partition"
    first: int
    last: int


@dataclass(slots=True)
class ShardOutcome:
    """What one shard's apply did: ``ok``, ``dup`` (a replay) or ``conflict``."""

    shard: int
    status: str
    counted: int = 0
    duplicates: int = 0
    markers: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _ShardCall:
    """The KEYS and ARGV of one shard's apply call, built incrementally."""

    shard: int
    keys: list[str]
    index: dict[str, int] = field(default_factory=dict)
    expiring: dict[str, int] = field(default_factory=dict)  # key -> expire-at (unix s)
    types: set[str] = field(default_factory=set)
    incr: list[Any] = field(default_factory=list)

    def key(self, name: str) -> int:
        idx = self.index.get(name)
        if idx is None:
            self.keys.append(name)
            idx = self.index[name] = len(self.keys)
        return idx


class CounterStore:
    """Applies tallies to Redis exactly once and keeps the 30-day leaderboards rolled."""

    def __init__(self, client: aioredis.Redis, shards: int, lateness: timedelta):
        self.client = client
        self.shards = shards
        self.lateness = lateness
        self._apply = client.register_script(lua_script("apply.lua"))
        self._roll = client.register_script(lua_script("roll.lua"))
        self._window_for: date | None = None
        self._indexed: set[str] = set()  # repos known to be in their org's index

    async def ensure_config(self) -> None:
        """Record the shard count on first use; refuse to run with a different one."""
        with store_errors():
            await self.client.hsetnx(keys.CONFIG_KEY, "shards", self.shards)
            stored = int(await self.client.hget(keys.CONFIG_KEY, "shards"))
        if stored != self.shards:
            raise ConfigError(
                f"Redis holds counters in {stored} shards but this worker is set to {self.shards}; "
                f"set HUBCOUNTER_SHARDS={stored}"
            )

    async def apply(self, tally: Tally, ranges: list[PartitionRange],
                    only_shard: int | None = None) -> list[ShardOutcome]:
        """Apply ``tally`` (restricted to ``only_shard`` if given) with its offset ranges.

        Raises StoreUnavailable when Redis cannot be reached, StoreRefused when it refuses
        the write: nothing may be assumed applied then, and the same batch must be applied
        again later.
        """
        calls = self._build_calls(tally, ranges, only_shard)
        if not calls:
            return []
        with store_errors():
            async with self.client.pipeline(transaction=False) as pipe:
                new_by_org = self._index_orgs(tally, pipe)
                for call in calls:
                    await self._apply(keys=call.keys, args=self._args(call, ranges), client=pipe)
                replies = (await pipe.execute())[len(new_by_org):]
        for members in new_by_org.values():
            self._indexed.update(members)
        return [self._outcome(call.shard, reply, ranges) for call, reply in zip(calls, replies, strict=True)]

    def _index_orgs(self, tally: Tally, pipe: Any) -> dict[str, list[str]]:
        """Queue one SADD per org of the batch's repos not yet indexed; return them by org.

        One command per org, not per repo: a command costs the client far more than a
        member does, and a cold worker sees thousands of new repos.
        """
        if len(self._indexed) > 2_000_000:
            self._indexed.clear()  # bounded memory; re-adding a member is harmless
        repo_keys = {key for key, _ in tally.plain} | {entry[0] for entry in tally.distinct}
        by_org: dict[str, list[str]] = defaultdict(list)
        for repo_key in repo_keys:
            if repo_key not in self._indexed:
                org = keys.org_of(repo_key)
                if org is not None:
                    by_org[org].append(repo_key)
        for org, members in by_org.items():
            pipe.sadd(keys.org_repos(org), *members)
        return by_org

    def _build_calls(self, tally: Tally, ranges: list[PartitionRange],
                     only_shard: int | None) -> list[_ShardCall]:
        calls: dict[int, _ShardCall] = {}

        def call_for(repo_key: str) -> _ShardCall | None:
            shard = keys.shard_of(repo_key, self.shards)
            if only_shard is not None and shard != only_shard:
                return None
            call = calls.get(shard)
            if call is None:
                call = calls[shard] = _ShardCall(shard, [keys.applied(shard), keys.meta(shard)])
            return call

        grouped: dict[tuple[str, str], list[tuple[int, msgspec.Raw]]] = defaultdict(list)
        for repo_key, day_name, bucket, user in tally.distinct:
            grouped[(repo_key, day_name)].append((bucket, _dedupe_member(repo_key, user)))
        for (repo_key, day_name), n in tally.plain.items():
            call = call_for(repo_key)
            if call is not None:
                self._add_increment(call, repo_key, day_name, n, ())
        for (repo_key, day_name), members in grouped.items():
            call = call_for(repo_key)
            if call is not None:
                self._add_increment(call, repo_key, day_name, 0, members)
        return list(calls.values())

    def _add_increment(self, call: _ShardCall, repo_key: str, day_name: str, n: int,
                       members: Iterable[tuple[int, msgspec.Raw]]) -> None:
        """Add one (repo, day) entry: ``n`` plain downloads, or dedupe ``members`` when n is 0."""
        repo_type, _, name = repo_key.partition(":")
        shard = call.shard
        call.types.add(repo_type)
        day_key = keys.day(shard, repo_type, day_name)
        if day_key not in call.expiring:  # once per key: the expiry is date arithmetic
            call.expiring[day_key] = _day_zset_expiry(day_name)
        dedupe = []
        for bucket, digest in members:
            seen_key = keys.seen(shard, bucket)
            if seen_key not in call.expiring:
                call.expiring[seen_key] = self._seen_expiry(bucket)
            dedupe.append((call.key(seen_key), digest))
        call.incr.append((repo_type, repo_key, call.key(day_key), name, day_name, n, dedupe))

    def _seen_expiry(self, bucket: int) -> int:
        """Keep a dedupe bucket while events of it can still arrive, plus a day's margin."""
        keep_ms = int(self.lateness.total_seconds() * 1000) + DAY_MS
        return ((bucket + 1) * DEDUPE_BUCKET_MS + keep_ms) // 1000

    def _args(self, call: _ShardCall, ranges: list[PartitionRange]) -> list[bytes]:
        # One msgpack argument instead of thousands: packing arguments one by one is
        # what a Python Redis client spends its time on.
        types = [(t, call.key(keys.window(call.shard, t)), call.key(keys.all_time(call.shard, t)))
                 for t in sorted(call.types)]
        return [_pack((
            [(r.field, r.first, r.last) for r in ranges],
            [(call.index[key], at) for key, at in call.expiring.items()],
            types,
            call.incr,
        ))]

    @staticmethod
    def _outcome(shard: int, reply: list[Any], ranges: list[PartitionRange]) -> ShardOutcome:
        status = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
        if status == "ok":
            return ShardOutcome(shard, status, int(reply[1]), int(reply[2]))
        if status == "conflict":
            markers = {r.field: int(m) for r, m in zip(ranges, reply[1:], strict=True)}
            return ShardOutcome(shard, status, markers=markers)
        return ShardOutcome(shard, status)

    async def heartbeat(self, worker_id: str, totals: dict[str, Any]) -> None:
        """Publish a worker's live totals (the dashboard derives rates from them)."""
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        with store_errors():
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.hset(keys.worker(worker_id), mapping={**totals, "updated_ms": now_ms})
                pipe.expire(keys.worker(worker_id), keys.WORKER_TTL_S)
                pipe.zadd(keys.WORKERS, {worker_id: now_ms})
                pipe.zremrangebyscore(keys.WORKERS, 0, now_ms - 1000 * keys.WORKER_TTL_S)
                await pipe.execute()

    async def roll_windows(self, now: datetime) -> None:
        """Move every shard's 30-day leaderboards to the window ending on ``now``'s UTC day."""
        today = now.astimezone(UTC).date()
        if self._window_for == today:
            return
        with store_errors():
            await roll_windows(self.client, self._roll, self.shards, today)
        self._window_for = today


def _day_zset_expiry(day_name: str) -> int:
    day_start = datetime.fromisoformat(day_name).replace(tzinfo=UTC)
    return int((day_start + timedelta(days=keys.DAY_ZSET_TTL_DAYS + 1)).timestamp())


def window_bounds(today: date) -> tuple[date, date]:
    """The last 30 UTC days including ``today``."""
    return today - timedelta(days=keys.WINDOW_DAYS - 1), today


async def roll_windows(client: aioredis.Redis, roll: Any, shards: int, today: date) -> None:
    """Bring every shard's w30 leaderboards to the window ending ``today`` (idempotent)."""
    start, end = window_bounds(today)
    for _attempt in range(5):
        async with client.pipeline(transaction=False) as pipe:
            for shard in range(shards):
                for repo_type in keys.COUNTED_TYPES:
                    pipe.hmget(keys.meta(shard), f"{repo_type}:start", f"{repo_type}:end")
            bounds = await pipe.execute()
        pending = 0
        async with client.pipeline(transaction=False) as pipe:
            it = iter(bounds)
            for shard in range(shards):
                for repo_type in keys.COUNTED_TYPES:
                    cur_start, cur_end = next(it)
                    if cur_start is not None and cur_start.decode() == start.isoformat():
                        continue
                    leaving, entering = _window_moves(cur_start, cur_end, start, end)
                    day_keys = [keys.day(shard, repo_type, d.isoformat()) for d in leaving + entering]
                    await roll(keys=[keys.meta(shard), keys.window(shard, repo_type), *day_keys],
                               args=[repo_type, cur_start.decode() if cur_start else "",
                                     start.isoformat(), end.isoformat(), len(leaving)], client=pipe)
                    pending += 1
            if not pending:
                return
            replies = await pipe.execute()
        if all(r in (b"ok", "ok") for r in replies):
            return
    raise StoreUnavailable("the 30-day leaderboards keep moving under this roll; retry later")


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _window_moves(cur_start: bytes | None, cur_end: bytes | None, start: date,
                  end: date) -> tuple[list[date], list[date]]:
    """Days leaving the current window and days entering the new one."""
    if cur_start is None or cur_end is None:
        return [], _days(start, end)
    old_start, old_end = date.fromisoformat(cur_start.decode()), date.fromisoformat(cur_end.decode())
    leaving = [d for d in _days(old_start, old_end) if not start <= d <= end]
    entering = [d for d in _days(start, end) if not old_start <= d <= old_end]
    return leaving, entering
