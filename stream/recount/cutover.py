"""Making a recount live, and undoing it: its shadow's differences added to the live counters.

Per shard, per chunk of whole repos (all the recounted days of a repo in one chunk), one
atomic, idempotent Lua step (``lua/recount.lua``) adds the differences to the repo's day
and all-time counts, the day, 30-day and all-time leaderboards, the breakdowns and the
uncounted requests, replaces or merges its downloaders, and records the new version for
those days. Differences commute with the live worker's increments, so it counts on
meanwhile; a chunk's state makes a second run of an interrupted apply or undo finish the
job without doing any chunk twice. The org index gains the repos the new rules count
(adding is idempotent; nothing is ever removed from it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import msgspec

from stream.recount.changes import Change
from stream.recount.shadow import read
from stream.store import keys
from stream.store.connect import RedisClient, store_errors
from stream.store.scripts import FOLD, RECOUNT, Command, run

_pack = msgspec.msgpack.Encoder().encode
_CHUNK = 200  # repo-days per atomic step: a millisecond or two of Redis each
_PIPELINE = 32  # steps per round trip


def expire_at(day_name: str, days: int) -> int:
    """Unix time ``days`` days after the end of the UTC day ``day_name`` (the store's lifetimes)."""
    start = datetime.fromisoformat(day_name).replace(tzinfo=UTC)
    return int((start + timedelta(days=days + 1)).timestamp())


def chunks(entries: Sequence[tuple[Change, bool]], size: int = _CHUNK) -> list[list[tuple[Change, bool]]]:
    """Entries cut into chunks of whole repos (entries are sorted by repo, then day)."""
    out: list[list[tuple[Change, bool]]] = []
    current: list[tuple[Change, bool]] = []
    for entry in entries:
        if current and len(current) >= size and entry[0].repo != current[-1][0].repo:
            out.append(current)
            current = []
        current.append(entry)
    if current:
        out.append(current)
    return out


def _step(shard: int, recount_id: str, index: int, chunk: list[tuple[Change, bool]], sign: int, version: str,
          keep: int, closed: set[str], folded: set[str], analytics: bool, now: int) -> Command:
    call_keys = [keys.shadow_state(shard, recount_id), keys.meta(shard), keys.rules(shard)]
    where: dict[str, int] = {}

    def key(name: str) -> int:
        if name not in where:
            call_keys.append(name)
            where[name] = len(call_keys)
        return where[name]

    entries = []
    for change, has_downloaders in chunk:
        repo_type, _, member = change.repo.partition(":")
        day = change.day
        day_exp, analytics_exp = (expire_at(day, n) for n in (keys.DAY_ZSET_TTL_DAYS, keys.ANALYTICS_TTL_DAYS))
        live_day = day_exp > now
        live_analytics = analytics and analytics_exp > now
        bd = key(keys.breakdown(shard, change.repo, day)) if live_analytics and change.breakdown else 0
        # Uncounted requests are p: fields of the same breakdown hash (kept as long).
        nc = key(keys.breakdown(shard, change.repo, day)) if analytics_exp > now and change.uncounted else 0
        entries.append((
            repo_type, key(keys.repo(shard, change.repo)), member, day, change.delta,
            key(keys.day(shard, repo_type, day)) if live_day else 0, key(keys.all_time(shard, repo_type)),
            key(keys.window(shard, repo_type)), day_exp,
            bd, [x for item in sorted(change.breakdown.items()) for x in item], analytics_exp,
            nc, [x for item in sorted(change.uncounted.items()) for x in item], analytics_exp,
            key(keys.uncounted_day(shard, day)) if nc else 0, change.library or "",
            key(keys.downloaders(shard, change.repo, day)) if live_analytics else 0,
            key(keys.shadow_downloaders(shard, recount_id, change.repo, day)) if has_downloaders else 0,
            key(keys.shadow_saved(shard, recount_id, change.repo, day)),
            day in closed, day in folded))
    return RECOUNT.call(call_keys, [_pack((sign, f"c{index}", version, keep, entries))])


async def cutover(client: RedisClient, shards: int, recount_id: str, meta: dict, sign: int, keep: int) -> int:
    """Apply (``sign`` 1) or undo (-1) a recount's shadow; the downloads it added (or removed)."""
    entries = await read(client, shards, recount_id)
    version = meta["new"]["version"]
    closed = set(meta["closedDays"])
    analytics = bool(meta["analytics"])
    days = sorted({change.day for items in entries.values() for change, _ in items})
    with store_errors():
        done = await client.hmget(keys.FOLDED, days) if days else []
    folded = {day for day, when in zip(days, done, strict=True) if when is not None}
    now = int(datetime.now(UTC).timestamp())
    if sign > 0:
        by_org: dict[str, set[str]] = {}
        for items in entries.values():
            for change, _ in items:
                org = keys.org_of(change.repo)
                if change.new > 0 and org is not None:
                    by_org.setdefault(org, set()).add(change.repo)
        if by_org:
            await run(client, [("SADD", keys.org_repos(org), *sorted(members)) for org, members in by_org.items()], ())
    steps: list[Command] = []
    refold: list[tuple[int, list[str]]] = []
    for shard, items in sorted(entries.items()):
        for index, chunk in enumerate(chunks(items)):
            steps.append(_step(shard, recount_id, index, chunk, sign, version, keep, closed, folded, analytics, now))
            hashes = sorted({keys.breakdown(shard, change.repo, change.day) for change, _ in chunk
                             if change.day in folded})
            if hashes:
                refold.append((shard, hashes))
    total = 0
    for begin in range(0, len(steps), _PIPELINE):
        total += sum(int(n) for n in await run(client, steps[begin:begin + _PIPELINE], (RECOUNT,)))
    if refold:
        with store_errors():
            top = int(await client.hget(keys.CONFIG_KEY, "top_values") or keys.DEFAULT_TOP_VALUES)
        await run(client, [FOLD.call(hashes, [top, keys.UNCOUNTED_TOP]) for _, hashes in refold], (FOLD,))
    return total
