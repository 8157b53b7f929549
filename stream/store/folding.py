"""Folding closed days: every repo-day's breakdowns bounded to their top values.

While events of a day can still arrive (the lateness window), its breakdowns keep every
value, so that late downloads land on the right one. Once the day is closed, one worker
folds it (``lua/fold.lua``): each dimension keeps its ``top`` values with most downloads
and sums the rest as "other", and what did not count keeps its top paths. Readers fold
every day the same way when they read it, so a folded and an unfolded day answer alike.
"""

from __future__ import annotations

import logging
import socket
from datetime import date, timedelta

from stream.store import keys
from stream.store.connect import RedisClient, store_errors
from stream.store.scripts import FOLD, run

log = logging.getLogger(__name__)

_CHUNK = 500  # repos per fold call: a few milliseconds of Redis each
_LOCK_S = 3600  # how long one worker may hold a day before another may take it over


async def fold_closed_days(client: RedisClient, shards: int, today: date, lateness: timedelta, top: int,
                           uncounted_top: int) -> list[date]:
    """Fold every closed day not folded yet (the last 90 days); the days this call folded.

    A day is closed once no event of it can arrive any more: ``lateness`` and a day's
    margin after its end. Workers race for each day with a lock; the loser moves on.
    """
    last = today - timedelta(days=lateness.days + 2)
    first = today - timedelta(days=keys.ANALYTICS_TTL_DAYS - 1)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    if not days:
        return []
    with store_errors():
        done = await client.hmget(keys.FOLDED, [d.isoformat() for d in days])
    folded = []
    for day, when in zip(days, done, strict=True):
        if when is None and await _fold_day(client, shards, day, top, uncounted_top):
            folded.append(day)
    return folded


async def _fold_day(client: RedisClient, shards: int, day: date, top: int, uncounted_top: int) -> bool:
    name = day.isoformat()
    with store_errors():
        if not await client.set(keys.folding(name), socket.gethostname(), nx=True, ex=_LOCK_S):
            return False  # another worker has it
        folded = 0
        for shard in range(shards):
            repos = {f"{repo_type}:{_text(m)}" for repo_type in keys.COUNTED_TYPES
                     for m in await client.zrange(keys.day(shard, repo_type, name), 0, -1)}
            repos.update(_text(m) for m in await client.smembers(keys.uncounted_day(shard, name)))
            hashes = [keys.breakdown(shard, repo_key, name) for repo_key in sorted(repos)]
            for begin in range(0, len(hashes), _CHUNK):
                chunk = hashes[begin:begin + _CHUNK]
                [n] = await run(client, [FOLD.call(chunk, [top, uncounted_top])], [FOLD])
                folded += int(n)
        await client.hset(keys.FOLDED, name, folded)
        await client.delete(keys.folding(name))
    log.info("folded the breakdowns of %s to their top %d values: %d values summed as other", name, top, folded)
    return True


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
