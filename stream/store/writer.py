"""The Redis side of counting: apply a batch's tally together with its positions.

Every shard gets one Lua call per batch (``lua/apply.lua``), with downloads or without:
each call moves the shard's position markers (:mod:`stream.store.markers`), so all
shards agree on how far they hold every partition. The calls go in one pipeline (on a
cluster: one per node, all nodes at once; see :mod:`stream.store.scripts`). A shard's
call is atomic and idempotent per source partition: a replayed batch (after a crash, a
rebalance or a lost commit) is skipped; a batch that straddles what was already applied
is re-tallied by the caller from the returned markers (``conflict``); a shard found
behind what the batch starts from (Redis lost writes) applies nothing and says so
(``gap``), and the caller counts again from its markers.
"""

from __future__ import annotations

import functools
import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec

from stream.counting import DAY_MS, DEDUPE_BUCKET_MS, Tally
from stream.errors import ConfigError, StoreUnavailable
from stream.fields import uncounted_fields
from stream.store import keys
from stream.store.connect import RedisClient, replica_waits, store_errors
from stream.store.folding import fold_closed_days
from stream.store.scripts import APPLY, ROLL, Command, run
from stream.store.window import moves, window_bounds

_pack = msgspec.msgpack.Encoder().encode
_DIGEST_BYTES = 12
_FIXSTR_12 = bytes([0xA0 | _DIGEST_BYTES])
_SCRIPTS = (APPLY, ROLL)


def _dedupe_member(repo_key: str, user: str) -> msgspec.Raw:
    """The 12-byte digest of (dataset, user), as a msgpack string.

    Redis's Lua msgpack decoder predates the msgpack ``bin`` type, so the raw digest
    travels as a fixed-length string: Lua strings are byte strings.
    """
    digest = hashlib.blake2b(f"{repo_key}\0{user}".encode(), digest_size=_DIGEST_BYTES).digest()
    return msgspec.Raw(_FIXSTR_12 + digest)


@dataclass(frozen=True, slots=True)
class PartitionRange:
    """The fetch positions [start, end) one batch covers in one source partition.

    ``start`` is where the previous batch of the partition ended (or where counting
    started), ``end`` just past the batch's last record: consecutive batches leave no
    gap, whatever holes the offsets have. ``base`` is what a shard without a marker for
    the partition stands at (see :class:`stream.store.markers.StartPlan`).
    """

    field: str  # "topic:partition"
    start: int
    end: int
    base: int


@dataclass(slots=True)
class ShardOutcome:
    """What one shard's apply did: ``ok``, ``dup`` (a replay), ``conflict`` (a straddle:
    ``markers`` says where to count again from) or ``gap`` (the shard is behind the batch:
    ``markers`` says what it holds, -1 for nothing)."""

    shard: int
    status: str
    counted: int = 0
    duplicates: int = 0
    markers: dict[str, int] = field(default_factory=dict)
    behind: set[str] = field(default_factory=set)  # gap: the partitions this shard holds less of


@dataclass(slots=True)
class _ShardCall:
    """The KEYS and ARGV of one shard's apply call, built incrementally."""

    shard: int
    keys: list[str]
    index: dict[str, int] = field(default_factory=dict)
    expiring: dict[str, int] = field(default_factory=dict)  # key -> expire-at (unix s)
    types: set[str] = field(default_factory=set)
    incr: list[Any] = field(default_factory=list)
    uncounted: list[Any] = field(default_factory=list)
    libraries: dict[tuple[str, str], str] = field(default_factory=dict)  # (model, day) -> library recorded

    def expire(self, name: str, at: int, sent: set[str]) -> None:
        """Set ``name``'s expiry in this call, unless this process already set it (``sent``)."""
        if name not in sent and name not in self.expiring:
            self.expiring[name] = at

    def key(self, name: str) -> int:
        idx = self.index.get(name)
        if idx is None:
            self.keys.append(name)
            idx = self.index[name] = len(self.keys)
        return idx


@dataclass(frozen=True, slots=True)
class _RepoDay:
    """The names a repo-day's writes use (made once, then reused: most batches touch the same ones)."""

    shard: int
    repo_type: str
    member: str  # org/name, the leaderboards' member
    repo: str
    day: str
    breakdown: str
    downloaders: str
    day_expiry: int
    analytics_expiry: int


class CounterStore:
    """Applies tallies to Redis exactly once and keeps the 30-day leaderboards rolled."""

    def __init__(self, client: RedisClient, shards: int, lateness: timedelta, min_replicas: int = 0,
                 replica_wait_ms: int = 1000, top_values: int = keys.DEFAULT_TOP_VALUES):
        self.client = client
        self.shards = shards
        self.lateness = lateness
        self.top_values = top_values
        self.min_replicas = min_replicas
        self.replica_wait_ms = replica_wait_ms
        self.unreplicated = 0  # applies some master could not confirm on min_replicas replicas in time
        self._window_for: date | None = None
        self._folded_for: date | None = None
        # Keys whose expiry this process has set, and the library it recorded for each
        # model-day's uncounted requests: written once, not with every batch (bounded; both
        # are forgotten when Redis goes back in time, so they are written again then).
        self._expiry_sent: set[str] = set()
        self._uncounted_sent: dict[tuple[str, str], str] = {}
        self._repo_days: dict[tuple[str, str], _RepoDay] = {}
        self._indexed: set[str] = set()  # repos known to be in their org's index

    def _repo_day(self, repo_key: str, day_name: str) -> _RepoDay:
        """The key names and expiries of one repo-day (cached, bounded)."""
        found = self._repo_days.get((repo_key, day_name))
        if found is None:
            if len(self._repo_days) >= 500_000:
                self._repo_days.clear()
            shard = keys.shard_of(repo_key, self.shards)
            repo_type, _, member = repo_key.partition(":")
            found = self._repo_days[(repo_key, day_name)] = _RepoDay(
                shard, repo_type, member, keys.repo(shard, repo_key), keys.day(shard, repo_type, day_name),
                keys.breakdown(shard, repo_key, day_name), keys.downloaders(shard, repo_key, day_name),
                _day_expiry(day_name, keys.DAY_ZSET_TTL_DAYS), _day_expiry(day_name, keys.ANALYTICS_TTL_DAYS))
        return found

    async def ensure_config(self) -> None:
        """Record the shard count on first use, and refuse to run with a different one; and
        the top values a closed day keeps (readers fold every day alike with it)."""
        with store_errors():
            await self.client.hset(keys.CONFIG_KEY, "top_values", self.top_values)
            await self.client.hsetnx(keys.CONFIG_KEY, "shards", self.shards)
            stored = int(await self.client.hget(keys.CONFIG_KEY, "shards"))
        if stored != self.shards:
            raise ConfigError(
                f"Redis holds counters in {stored} shards but this worker is set to {self.shards}; "
                f"set HUBCOUNTER_SHARDS={stored}"
            )

    async def apply(self, tally: Tally, ranges: list[PartitionRange],
                    only_shard: int | None = None, version: str = "") -> list[ShardOutcome]:
        """Apply ``tally`` with its ranges to every shard (to ``only_shard`` alone if given).

        ``version``, the rules version that judged the batch, is recorded with it: per
        partition where it starts, per type and day that it counted there.

        With ``min_replicas``, each master written to is then asked to confirm (``WAIT``)
        that as many replicas hold the writes; a master that cannot in
        ``replica_wait_ms`` is counted in ``unreplicated`` (the markers bring back what a
        failover then loses). Raises StoreUnavailable when Redis cannot be reached,
        StoreRefused when it refuses the write: nothing may be assumed applied then, and
        the same batch must be applied again later.
        """
        calls = self._build_calls(tally, ranges, only_shard)
        new_by_org = self._new_by_org(tally)
        commands: list[Command] = [("SADD", keys.org_repos(org), *members) for org, members in new_by_org.items()]
        commands += [APPLY.call(call.keys, self._args(call, ranges, version)) for call in calls]
        waits = replica_waits(self.client, [call.keys[0] for call in calls], self.min_replicas,
                              self.replica_wait_ms) if self.min_replicas else []
        replies = await run(self.client, commands + waits, _SCRIPTS, tolerated=len(waits))
        applied = replies[len(new_by_org):len(new_by_org) + len(calls)]
        # A WAIT that fails (its node stopped being a master meanwhile) confirms nothing either.
        self.unreplicated += sum(isinstance(acks, Exception) or int(acks) < self.min_replicas
                                 for acks in replies[len(commands):])
        for members in new_by_org.values():
            self._indexed.update(members)
        outcomes = [self._outcome(call.shard, reply, ranges) for call, reply in zip(calls, applied, strict=True)]
        self._remember_sent(calls, outcomes)
        return outcomes

    def _remember_sent(self, calls: list[_ShardCall], outcomes: list[ShardOutcome]) -> None:
        """What the applied calls wrote once and for all: their keys' expiries, the libraries."""
        if len(self._expiry_sent) > 2_000_000 or len(self._uncounted_sent) > 1_000_000:
            self._expiry_sent.clear()  # bounded memory; setting an expiry again is harmless
            self._uncounted_sent.clear()
        for call, outcome in zip(calls, outcomes, strict=True):
            if outcome.status == "ok":
                self._expiry_sent.update(call.expiring)
                self._uncounted_sent.update(call.libraries)

    def forget(self) -> None:
        """Redis went back in time: what this store remembers having written (the org index
        entries, the day the boards were rolled to, expiries, libraries) may be gone; write
        it again."""
        self._indexed.clear()
        self._window_for = None
        self._expiry_sent.clear()
        self._uncounted_sent.clear()

    def _new_by_org(self, tally: Tally) -> dict[str, list[str]]:
        """The batch's repos not yet known to be in their org's index, by org (one SADD each).

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
        return by_org

    def _build_calls(self, tally: Tally, ranges: list[PartitionRange],
                     only_shard: int | None) -> list[_ShardCall]:
        # Every shard gets a call, downloads or none, so that every marker moves.
        calls = {shard: _ShardCall(shard, [keys.position(shard), keys.meta(shard), keys.rules(shard)])
                 for shard in ([only_shard] if only_shard is not None else range(self.shards))}

        grouped: dict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
        for (repo_key, day_name, bucket, user), fields in tally.distinct.items():
            member = (bucket, _dedupe_member(repo_key, user))
            grouped[(repo_key, day_name)].append(member if fields is None else (*member, *fields))
        for entry, n in tally.plain.items():
            names = self._repo_day(*entry)
            call = calls.get(names.shard)
            if call is not None:
                self._add_increment(call, names, entry[1], n, (), tally.breakdown.get(entry),
                                    tally.downloaders.get(entry, ()))
        for entry, members in grouped.items():
            names = self._repo_day(*entry)
            call = calls.get(names.shard)
            if call is not None:
                self._add_increment(call, names, entry[1], 0, members, None, ())
        sent = self._expiry_sent
        for entry, paths in tally.uncounted.items():
            names = self._repo_day(*entry)
            call = calls.get(names.shard)
            if call is not None:
                call.expire(names.breakdown, names.analytics_expiry, sent)
                library = tally.libraries.get(entry[0]) or ""
                fields = uncounted_fields(paths)
                if self._uncounted_sent.get(entry) == library:
                    call.uncounted.append((call.key(names.breakdown), fields))  # library and index written already
                else:
                    index_key = keys.uncounted_day(call.shard, entry[1])
                    call.expire(index_key, names.analytics_expiry, sent)
                    call.libraries[entry] = library
                    call.uncounted.append((call.key(names.breakdown), fields, library, call.key(index_key), entry[0]))
        return list(calls.values())

    def _add_increment(self, call: _ShardCall, names: _RepoDay, day_name: str, n: int,
                       members: Iterable[tuple[Any, ...]], fields: dict[str, int] | None,
                       downloaders: Iterable[str]) -> None:
        """Add one (repo, day) entry: ``n`` plain downloads, or dedupe ``members`` when n is 0.

        With analytics, ``fields`` (breakdown field -> n) add to the day's breakdown and
        ``downloaders`` to its HLL; a dataset's members carry their four facet fields.
        """
        call.types.add(names.repo_type)
        sent = self._expiry_sent
        call.expire(names.day, names.day_expiry, sent)
        dedupe = []
        analytics = fields is not None
        for bucket, digest, *facet in members:
            seen_key = keys.seen(call.shard, bucket)
            if seen_key not in call.expiring and seen_key not in sent:
                call.expiring[seen_key] = self._seen_expiry(bucket)
            dedupe.append((call.key(seen_key), digest, *facet))
            analytics = analytics or bool(facet)
        breakdown = users = 0
        if analytics:
            breakdown, users = call.key(names.breakdown), call.key(names.downloaders)
            call.expire(names.breakdown, names.analytics_expiry, sent)
            call.expire(names.downloaders, names.analytics_expiry, sent)
        call.incr.append((names.repo_type, call.key(names.repo), call.key(names.day), names.member, day_name, n,
                          dedupe, breakdown, users, fields or {}, list(downloaders)))

    def _seen_expiry(self, bucket: int) -> int:
        """Keep a dedupe bucket while events of it can still arrive, plus a day's margin."""
        keep_ms = int(self.lateness.total_seconds() * 1000) + DAY_MS
        return ((bucket + 1) * DEDUPE_BUCKET_MS + keep_ms) // 1000

    def _args(self, call: _ShardCall, ranges: list[PartitionRange], version: str) -> list[bytes]:
        # One msgpack argument instead of thousands: packing arguments one by one is
        # what a Python Redis client spends its time on.
        types = [(t, call.key(keys.window(call.shard, t)), call.key(keys.all_time(call.shard, t)))
                 for t in sorted(call.types)]
        return [_pack((
            [(r.field, r.start, r.end, r.base) for r in ranges],
            [(call.index[key], at) for key, at in call.expiring.items()],
            types,
            call.incr,
            call.uncounted,
            version,
        ))]

    @staticmethod
    def _outcome(shard: int, reply: list[Any], ranges: list[PartitionRange]) -> ShardOutcome:
        status = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
        if status == "ok":
            return ShardOutcome(shard, status, int(reply[1]), int(reply[2]))
        if status == "conflict":
            markers = {r.field: int(m) for r, m in zip(ranges, reply[1:], strict=True)}
            return ShardOutcome(shard, status, markers=markers)
        if status == "gap":
            markers = {r.field: int(m) for r, m in zip(ranges, reply[1:], strict=True)}
            behind = {r.field for r in ranges if (markers[r.field] if markers[r.field] >= 0 else r.base) < r.start}
            return ShardOutcome(shard, status, markers=markers, behind=behind)
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

    async def fold_closed_days(self, now: datetime) -> None:
        """Fold the breakdowns of every closed day to their top values (once a day)."""
        today = now.astimezone(UTC).date()
        if self._folded_for != today:
            await fold_closed_days(self.client, self.shards, today, self.lateness, self.top_values,
                                   keys.UNCOUNTED_TOP)
            self._folded_for = today

    async def roll_windows(self, now: datetime) -> None:
        """Move every shard's 30-day leaderboards to the window ending on ``now``'s UTC day."""
        today = now.astimezone(UTC).date()
        if self._window_for == today:
            return
        await roll_windows(self.client, self.shards, today)
        self._window_for = today


@functools.lru_cache(maxsize=1024)
def _day_expiry(day_name: str, days: int) -> int:
    """Unix time ``days`` days after the end of the UTC day ``day_name`` (a batch spans few days)."""
    day_start = datetime.fromisoformat(day_name).replace(tzinfo=UTC)
    return int((day_start + timedelta(days=days + 1)).timestamp())


async def roll_windows(client: RedisClient, shards: int, today: date) -> None:
    """Bring every shard's w30 leaderboards forward to the window ending ``today`` (idempotent).

    Only forward: a board already at or past that window (a worker whose clock is ahead
    moved it) stays, so two workers with clocks a little apart do not move it to and fro,
    and a window start read from ``meta`` never goes back (readers rely on it).
    """
    start, end = window_bounds(today)
    for _attempt in range(5):
        with store_errors():
            async with client.pipeline(transaction=False) as pipe:
                for shard in range(shards):
                    for repo_type in keys.COUNTED_TYPES:
                        pipe.hmget(keys.meta(shard), f"{repo_type}:start", f"{repo_type}:end")
                bounds = iter(await pipe.execute())
        commands: list[Command] = []
        for shard in range(shards):
            for repo_type in keys.COUNTED_TYPES:
                cur_start, cur_end = (_text(v) for v in next(bounds))
                if cur_start is not None and cur_start >= start.isoformat():
                    continue  # ISO days compare as strings
                move = moves((cur_start, cur_end), start, end)
                day_keys = [keys.day(shard, repo_type, d) for d in (*move.sub, *move.add)]
                commands.append(ROLL.call(
                    [keys.meta(shard), keys.window(shard, repo_type), *day_keys],
                    [repo_type, cur_start or "", start.isoformat(), end.isoformat(), len(move.sub)]))
        if not commands:
            return
        replies = await run(client, commands, _SCRIPTS)
        if all(_text(r) == "ok" for r in replies):
            return
    raise StoreUnavailable("the 30-day leaderboards keep moving under this roll; retry later")


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
