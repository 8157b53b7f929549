"""Reading counters back from Redis in the reference's shape, and comparing them.

Two layouts: the worker's sharded one (``stream.store.keys``) and the baselines' plain one
(``bench.baseline_common``). Both come back as ``{"type:repo": {"downloadsAllTime": n,
"daily": {"YYYY-MM-DD": n}}}``, the shape of ``stream.reference.compute``.
"""

from __future__ import annotations

from typing import Any

import redis

from bench.baseline_common import PREFIX
from stream.store import keys

Counts = dict[str, dict[str, Any]]


def _shape(fields: dict[bytes, bytes]) -> dict[str, Any]:
    total = int(fields.pop(b"all", b"0"))
    daily = {day.decode(): int(n) for day, n in sorted(fields.items()) if int(n)}
    return {"downloadsAllTime": total, "daily": daily}


def _read_hashes(client: redis.Redis | redis.RedisCluster, names: list[str], hash_keys: list[str]) -> Counts:
    out: Counts = {}
    for start in range(0, len(hash_keys), 5000):
        with client.pipeline(transaction=False) as pipe:
            for key in hash_keys[start:start + 5000]:
                pipe.hgetall(key)
            replies = pipe.execute()
        for name, fields in zip(names[start:start + 5000], replies, strict=True):
            out[name] = _shape(fields)
    return out


def worker_counts(client: redis.Redis | redis.RedisCluster) -> Counts:
    """Every counter the worker wrote (repos found through the all-time leaderboards)."""
    stored = client.hget(keys.CONFIG_KEY, "shards")
    if stored is None:
        return {}
    shards = int(stored)
    names: list[str] = []
    hash_keys: list[str] = []
    with client.pipeline(transaction=False) as pipe:
        for shard in range(shards):
            for repo_type in keys.COUNTED_TYPES:
                pipe.zrange(keys.all_time(shard, repo_type), 0, -1)
        members = pipe.execute()
    index = 0
    for shard in range(shards):
        for repo_type in keys.COUNTED_TYPES:
            for repo in members[index]:
                repo_key = f"{repo_type}:{repo.decode()}"
                names.append(repo_key)
                hash_keys.append(keys.repo(shard, repo_key))
            index += 1
    return _read_hashes(client, names, hash_keys)


def baseline_counts(client: redis.Redis, prefix: str = PREFIX) -> Counts:
    """Every counter a baseline wrote (a SCAN is fine here: this is a benchmark, not the API)."""
    head = f"{prefix}:repo:"
    hash_keys = sorted(key.decode() for key in client.scan_iter(match=f"{head}*", count=10_000))
    return _read_hashes(client, [k[len(head):] for k in hash_keys], hash_keys)


def differences(actual: Counts, expected: Counts, examples: int = 3) -> tuple[int, list[str]]:
    """How many repos differ from the reference, and a few of them described."""
    wrong = sorted(k for k in actual.keys() | expected.keys() if actual.get(k) != expected.get(k))
    return len(wrong), [f"{k}: got {actual.get(k)}, expected {expected.get(k)}" for k in wrong[:examples]]
