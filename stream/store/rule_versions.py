"""Rules versions in Redis: what each version is, and where each took over counting.

The worker records every version it counts with (``hc:rules:versions``: version -> what
it is built from, :class:`~stream.rules.versions.RulesVersion`) before its first batch
under it. Each batch then records its version in every shard's ``hc:{N}:rules`` hash, in
the same atomic step as its counts (``lua/apply.lua``): per partition, the version of its
last batch, and ``<partition>@<position>`` -> version where that changed (the switch
point); per ``<type>/<day>``, the versions that counted downloads there. A recount reads
those switch points to know, for every event, which version counted it.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from stream.rules.versions import RulesVersion
from stream.store import keys
from stream.store.connect import RedisClient, store_errors
from stream.store.scripts import run


async def record_version(client: RedisClient, version: RulesVersion) -> None:
    """Record what ``version`` is (idempotent: the same version is the same rules)."""
    with store_errors():
        await client.hset(keys.RULE_VERSIONS, version.version, version.to_json())


async def read_versions(client: RedisClient) -> dict[str, RulesVersion]:
    """Every recorded version, by its hash."""
    with store_errors():
        found = await client.hgetall(keys.RULE_VERSIONS)
    return {_text(k): RulesVersion.from_json(v) for k, v in found.items()}


@dataclass(slots=True)
class History:
    """One shard's versions along one partition: from each position on, which version counted."""

    starts: list[int] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    current: str | None = None  # the version of the last batch applied

    def add(self, position: int, version: str) -> None:
        at = bisect.bisect_left(self.starts, position)
        self.starts.insert(at, position)
        self.versions.insert(at, version)

    def at(self, position: int) -> str | None:
        """The version that counted the record at ``position`` (None: before any record)."""
        index = bisect.bisect_right(self.starts, position) - 1
        return self.versions[index] if index >= 0 else None

    def since(self, version: str) -> int | None:
        """Where ``version`` took over for good (it is the current one), else None."""
        if self.current != version or not self.versions:
            return None
        index = len(self.versions) - 1
        while index > 0 and self.versions[index - 1] == version:
            index -= 1
        return self.starts[index]


@dataclass(slots=True)
class ShardRules:
    """What one shard's rules hash says: per partition its history, per type-day its versions."""

    partitions: dict[str, History] = field(default_factory=dict)
    days: dict[str, list[str]] = field(default_factory=dict)  # "<type>/<day>" -> versions


async def read_shard_rules(client: RedisClient, shards: int, topic: str | None = None) -> list[ShardRules]:
    """Every shard's rules hash, parsed (partitions of ``topic`` only, when given)."""
    replies = await run(client, [("HGETALL", keys.rules(shard)) for shard in range(shards)], ())
    out = []
    for reply in replies:
        shard = ShardRules()
        for raw_name, raw_value in reply.items():
            name, value = _text(raw_name), _text(raw_value)
            partition, at, position = name.rpartition("@")[0], "@" in name, name.rpartition("@")[2]
            if at:
                if topic is None or partition.rpartition(":")[0] == topic:
                    shard.partitions.setdefault(partition, History()).add(int(position), value)
            elif "/" in name:  # a topic name has no slash
                shard.days[name] = value.split()
            elif topic is None or name.rpartition(":")[0] == topic:
                shard.partitions.setdefault(name, History()).current = value
        out.append(shard)
    return out


def day_field(repo_type: str, day_name: str) -> str:
    """The rules hash field of the versions that counted a type's downloads on a day."""
    return f"{repo_type}/{day_name}"


async def day_versions(client: RedisClient, shards: int, repo_key: str, days: Sequence[str]) -> dict[str, str]:
    """The versions that counted the repo's shard on each of ``days`` (space-separated), where recorded."""
    repo_type = repo_key.partition(":")[0]
    shard = keys.shard_of(repo_key, shards)
    with store_errors():
        found = await client.hmget(keys.rules(shard), [day_field(repo_type, day) for day in days])
    return {day: _text(v) for day, v in zip(days, found, strict=True) if v is not None}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
