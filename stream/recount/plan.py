"""What a recount reads and how it judges it, decided from what Redis recorded.

Every shard records, per partition, which rules version counted from which position on
(:mod:`stream.store.rule_versions`). From that:

* the *old* side of every event is the version that counted it in its repo's shard;
* the *fence* of a partition in a shard is where the live worker's counts are kept: the
  position from which the shard has counted the partition under the new rules (the
  switch point), or, when it does not count with them yet, what the shard holds of the
  partition now (its position marker). Before the fence the recount replaces the old
  rules' counts with the new rules'; from it on the live worker's counts stand;
* the affected libraries are those whose rule differs between any old version and the
  new one (``Registry.changed_libraries``; a changed GGUF rule affects every model), or
  the libraries named.

A recount can be applied when every partition of every shard counts with the new rules
(nothing after the fence is counted with the old ones), or when every recounted day was
closed when the fences were read (no event of it can be counted after them).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from stream.errors import ConfigError
from stream.recount.judge import AFTER_FENCE, Period, Placement
from stream.rules.registry import Registry
from stream.rules.versions import RulesVersion
from stream.store.rule_versions import History, ShardRules


@dataclass(slots=True)
class Plan:
    """The rules on both sides, the affected libraries and the fences of one recount."""

    new: RulesVersion
    new_rules: Registry
    old: dict[str, RulesVersion]
    old_rules: dict[str, Registry]
    everything: bool
    libraries: frozenset[str | None]
    named: bool  # the libraries were named, not found by comparing the rules
    period: Period
    switched: bool  # every partition of every shard counts with the new rules
    closed: bool  # every day of the period was closed when the fences were read
    fences: list[dict[str, int]] = field(default_factory=list)  # per shard: partition -> fence
    histories: list[dict[str, History]] = field(default_factory=list)  # per shard: partition -> history
    fallback: str | None = None  # the version of records counted before versions were recorded

    def affected(self, library: str | None) -> bool:
        return self.everything or library in self.libraries

    @property
    def applicable(self) -> tuple[bool, str]:
        """Whether the recount may be applied, and why (not)."""
        if self.switched:
            return True, "the live worker counts with the new rules from each partition's fence on"
        if self.closed:
            return True, "every recounted day was closed (past the lateness window) when the fences were read"
        return False, ("the live worker does not count with the new rules yet and some recounted days are still "
                       "open: reload its rules (SIGHUP) and recount again, so its counts after the switch stand")

    def read_to(self) -> dict[str, int]:
        """Per partition, the furthest fence of any shard: where reading stops."""
        out: dict[str, int] = {}
        for fences in self.fences:
            for name, position in fences.items():
                out[name] = max(out.get(name, 0), position)
        return out

    def kafka_placement(self) -> Placement:
        """Which version counted a record, from its repo's shard's history (see the module)."""
        shards, fences, histories, fallback = len(self.fences), self.fences, self.histories, self.fallback

        def placement(repo_key: str, source: str, position: int) -> str | None:
            shard = zlib.crc32(repo_key.encode()) % shards
            if position >= fences[shard].get(source, 0):
                return AFTER_FENCE
            history = histories[shard].get(source)
            version = history.at(position) if history is not None else None
            return version if version is not None else fallback

        return placement

    def archive_placement(self) -> Placement:
        """Every archived event was counted by the one old version (see :func:`archive_version`)."""
        [version] = self.old

        def placement(repo_key: str, source: str, position: int) -> str | None:
            return version

        return placement


def affected_libraries(new: Registry, old: Sequence[Registry]) -> tuple[bool, frozenset[str | None]]:
    """Whose rule differs between any of ``old`` and ``new`` (everything: the GGUF rule)."""
    found: set[str | None] = set()
    for rules in old:
        everything, libraries = rules.changed_libraries(new)
        if everything:
            return True, frozenset()
        found |= libraries
    return False, frozenset(found)


def kafka_fences(shard_rules: Sequence[ShardRules], markers: dict[str, list[int | None]],
                 new_version: str) -> tuple[list[dict[str, int]], bool]:
    """Per shard and partition, the fence (see the module docstring); and whether every
    partition of every shard counts with ``new_version``."""
    fences: list[dict[str, int]] = []
    switched = True
    for shard, rules in enumerate(shard_rules):
        mine: dict[str, int] = {}
        for name, positions in markers.items():
            history = rules.partitions.get(name)
            since = history.since(new_version) if history is not None else None
            held = positions[shard]
            if since is not None:
                mine[name] = since
            else:
                switched = switched and held is None  # a shard that never counted it has nothing old
                mine[name] = held if held is not None else 0
        fences.append(mine)
    return fences, switched


def versions_in(shard_rules: Sequence[ShardRules]) -> set[str]:
    """Every version any shard recorded for any partition."""
    return {v for rules in shard_rules for history in rules.partitions.values() for v in history.versions}


def archive_version(shard_rules: Sequence[ShardRules], new_version: str) -> tuple[set[str], bool]:
    """The versions that counted before the switch to ``new_version`` (the current one where
    a partition has not switched), and whether every partition has switched."""
    found: set[str] = set()
    switched = True
    for rules in shard_rules:
        for history in rules.partitions.values():
            since = history.since(new_version)
            if since is None:
                switched = False
                if history.current is not None:
                    found.add(history.current)
            else:
                index = history.starts.index(since)
                if index > 0:
                    found.add(history.versions[index - 1])
    return found, switched


def period_closed(period: Period, lateness: timedelta, now: datetime) -> bool:
    """Whether no event of the period can be counted any more at ``now``."""
    end = datetime.fromtimestamp(period.end_ms / 1000, now.tzinfo)
    return end + lateness <= now


def recount_id(new_version: str, period: Period, libraries: Sequence[str] | None, source: Sequence[str]) -> str:
    """The id of a recount: the same question asks for the same id (a restart takes it over)."""
    text = "|".join([new_version, period.first.isoformat(), period.last.isoformat(),
                     ",".join(sorted(libraries)) if libraries else "*", ",".join(source)])
    return "rc-" + hashlib.sha256(text.encode()).hexdigest()[:10]


def resolve(versions: dict[str, RulesVersion], wanted: set[str]) -> dict[str, RulesVersion]:
    """The recorded versions ``wanted``; a version never recorded is an error."""
    missing = sorted(wanted - versions.keys())
    if missing:
        raise ConfigError(f"rules version(s) {', '.join(missing)} counted this history but are not recorded in "
                          f"Redis (hc:rules:versions); they cannot be judged again")
    return {v: versions[v] for v in sorted(wanted)}
