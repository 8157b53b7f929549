"""The recount job: plan, read history again, write the shadow, report; apply and undo.

Only the shadow and the recount's record are written while counting (and the new
rules' version, in the versions registry): the live counters change only in
:func:`apply`, and back in :func:`undo`. See docs/RECOUNT.md for the operator's walk.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stream.classes import load_classifier
from stream.errors import ConfigError
from stream.facets import Facets
from stream.metadata import LibraryMap, MetadataFeed
from stream.partitions import field_of
from stream.recount import parallel, shadow
from stream.recount.changes import changes
from stream.recount.cutover import cutover
from stream.recount.judge import UNKNOWN, Judge, Period
from stream.recount.plan import (
    Plan,
    affected_libraries,
    archive_version,
    kafka_fences,
    period_closed,
    recount_id,
    resolve,
    versions_in,
)
from stream.recount.report import build, live_counts
from stream.recount.sources import Span, partitions_of, read_archives, read_kafka, spans
from stream.rules.versions import load_rules
from stream.settings import Settings
from stream.store import keys
from stream.store.connect import RedisClient, store_errors
from stream.store.markers import read_markers
from stream.store.rule_versions import read_shard_rules, read_versions, record_version

KAFKA = "kafka"


@dataclass(frozen=True, slots=True)
class Request:
    """What the operator asked: the new rules, the period, whose repos, from where."""

    rules_file: str | None
    rules_name: str | None
    period: Period
    libraries: tuple[str, ...] | None = None
    sources: tuple[str, ...] = (KAFKA,)
    old_version: str | None = None  # the version of records counted before versions were recorded
    jobs: int = 1  # processes that read and judge (stream.recount.parallel)

    @property
    def from_kafka(self) -> bool:
        return self.sources == (KAFKA,)


async def stored_shards(client: RedisClient) -> int:
    """The shard count the counters were written with (``hc:config``)."""
    with store_errors():
        found = await client.hget(keys.CONFIG_KEY, "shards")
    if found is None:
        raise ConfigError("Redis holds no counters (no hc:config): nothing to recount")
    return int(found)


async def load_libraries(settings: Settings) -> LibraryMap:
    """The whole repo -> library map from the metadata topic, as a worker loads it."""
    libraries = LibraryMap()
    feed = MetadataFeed(settings.kafka, settings.metadata_topic, libraries)
    task = asyncio.create_task(feed.run())
    ready = asyncio.create_task(feed.ready.wait())
    try:
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            task.result()  # the feed failed: say why
    finally:
        for pending in (task, ready):
            pending.cancel()
        await asyncio.gather(task, ready, return_exceptions=True)
    return libraries


async def make_plan(client: RedisClient, settings: Settings, shards: int, request: Request,
                    now: datetime) -> tuple[Plan, list[Any]]:
    """Decide the rules of both sides, the affected libraries and the fences (stream.recount.plan)."""
    new_rules, new = load_rules(request.rules_file, request.rules_name)
    await record_version(client, new)
    versions = await read_versions(client)
    shard_rules = await read_shard_rules(client, shards, settings.events_topic)
    tps: list[Any] = []
    fences: list[dict[str, int]] = []
    if request.from_kafka:
        tps = await partitions_of(settings.kafka, settings.events_topic)
        if not tps:
            raise ConfigError(f"the events topic {settings.events_topic!r} has no partitions")
        markers = await read_markers(client, shards, [field_of(tp) for tp in tps])
        fences, switched = kafka_fences(shard_rules, {f: m[0] for f, m in markers.items()}, new.version)
        wanted = versions_in(shard_rules) | ({request.old_version} if request.old_version else set())
    else:
        wanted, switched = archive_version(shard_rules, new.version)
        if request.old_version:
            wanted = {request.old_version}
        if len(wanted) != 1:
            raise ConfigError(
                "the archives' events were counted by " + (", ".join(sorted(wanted)) or "no recorded version") +
                ": say which with --old-version (hubcounter recount --versions lists them)")
    old = resolve(versions, wanted)
    old_rules = {version: record.registry() for version, record in old.items()}
    if request.libraries:
        everything, libraries, named = False, frozenset(request.libraries), True
    else:
        everything, libraries = affected_libraries(new_rules, list(old_rules.values()))
        named = False
    closed = period_closed(request.period, settings.lateness, now)
    plan = Plan(new, new_rules, old, old_rules, everything, libraries, named, request.period, switched, closed,
                fences, [rules.partitions for rules in shard_rules], request.old_version)
    return plan, tps


async def recount(client: RedisClient, settings: Settings, request: Request,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Count the period again into a shadow generation; the diff report (see the module)."""
    say = progress or (lambda _text: None)
    now = datetime.now(UTC)
    shards = await stored_shards(client)
    plan, tps = await make_plan(client, settings, shards, request, now)
    source = KAFKA if request.from_kafka else ",".join(request.sources)
    the_id = recount_id(plan.new.version, request.period, request.libraries, request.sources)
    existing = await shadow.generation(client, the_id)
    if existing is not None and existing.state in (shadow.APPLYING, shadow.APPLIED, shadow.UNDOING):
        raise ConfigError(f"recount {the_id} is {existing.state}: undo it (--undo {the_id}) before counting it again")
    await _refuse_overlap(client, the_id, request.period)
    if existing is not None:
        say(f"recount {the_id} was left {existing.state}: deleting its shadow and counting again")
        await shadow.discard(client, shards, the_id)
    meta = {
        "new": {"version": plan.new.version, "label": plan.new.label},
        "old": {v: r.label for v, r in plan.old.items()},
        "period": {"from": request.period.first.isoformat(), "to": request.period.last.isoformat()},
        "libraries": "every model (the GGUF rule changed)" if plan.everything else sorted(
            "(default files)" if n is None else n for n in plan.libraries),
        "librariesNamed": plan.named, "source": source, "created": now.isoformat(timespec="seconds"),
        "switched": plan.switched, "analytics": settings.analytics,
        "closedDays": request.period.days() if plan.closed else [],
        "fences": _fence_summary(plan),
    }
    await shadow.begin(client, the_id, meta)
    say(f"recount {the_id}: loading the repo metadata")
    libraries = await load_libraries(settings)
    facets = Facets(load_classifier(settings.classes_file)) if settings.analytics else None

    def fresh() -> Judge:
        return Judge(plan.new_rules, plan.old_rules, libraries.library_of, plan.affected, request.period,
                     settings.lateness, facets, settings.max_message_bytes)

    judge = fresh()
    started = datetime.now(UTC)

    def counted(read: int) -> None:
        elapsed = max((datetime.now(UTC) - started).total_seconds(), 1e-6)
        by = f" by job {os.getpid()}" if request.jobs > 1 else ""
        say(f"recount {the_id}: {read:,} events read{by} ({read / elapsed:,.0f}/s)")

    if plan.everything or plan.libraries:
        if request.from_kafka:
            todo = await spans(settings.kafka, tps, request.period.start_ms, plan.read_to())
            at_fence = plan.kafka_placement()

            def read_partitions(part: Sequence[Span], into: Judge) -> int:
                return asyncio.run(read_kafka(settings.kafka, part, into, at_fence, counted, settings.check_crcs))

            read = await parallel.judge_kafka(todo, request.jobs, fresh, read_partitions, judge)
        else:
            archived = plan.archive_placement()

            def read_files(part: Sequence[str | Path], into: Judge) -> int:
                return read_archives(part, into, archived, counted)

            read = await parallel.judge_archives(request.sources, request.jobs, fresh, read_files, judge)
    else:
        read = 0
        say("no library's rule differs between the rules that counted this history and the new rules")
    if judge.outcomes.get(UNKNOWN):
        raise ConfigError(f"{judge.outcomes[UNKNOWN]:,} events were counted before rules versions were recorded: "
                          f"give the version that counted them with --old-version")
    elapsed = (datetime.now(UTC) - started).total_seconds()
    found = changes(judge.old, judge.new, libraries.library_of)
    await shadow.write(client, shards, the_id, found)
    live = await live_counts(client, shards, found)
    meta |= {"read": read, "seconds": round(elapsed, 3), "repoDays": len(found),
             "change": sum(c.delta for c in found)}
    report = build(the_id, plan, judge, found, live, meta)
    meta["applicable"], meta["why"] = report["applicable"], report["why"]
    await shadow.set_state(client, the_id, shadow.READY, meta)  # last: the shadow is whole
    return report


async def _refuse_overlap(client: RedisClient, the_id: str, period: Period) -> None:
    """A second recount of days an applied one changed would judge them as its old rules
    counted them, not as the applied recount left them: refuse until that one is undone."""
    for other in await shadow.generations(client):
        if other.id == the_id or other.state not in (shadow.APPLYING, shadow.APPLIED, shadow.UNDOING):
            continue
        span = other.meta["period"]
        if span["from"] <= period.last.isoformat() and period.first.isoformat() <= span["to"]:
            raise ConfigError(f"recount {other.id} is applied to days of this period ({span['from']} to {span['to']});"
                              f" undo it first (--undo {other.id}), then recount with both rule changes at once")


def _fence_summary(plan: Plan) -> dict[str, list[int]]:
    """Per partition, the lowest and highest fence over the shards (for the record)."""
    out: dict[str, list[int]] = {}
    for fences in plan.fences:
        for name, position in fences.items():
            low, high = out.get(name, [position, position])
            out[name] = [min(low, position), max(high, position)]
    return dict(sorted(out.items()))


async def apply(client: RedisClient, the_id: str, keep_days: int) -> int:
    """Make a ready recount live (or finish an interrupted apply); the downloads it added."""
    shards = await stored_shards(client)
    found = await _generation(client, the_id)
    if found.state not in (shadow.READY, shadow.APPLYING, shadow.UNDONE):
        raise ConfigError(f"recount {the_id} is {found.state}: only a ready (or undone) recount can be applied")
    if not found.meta.get("applicable"):
        raise ConfigError(f"recount {the_id} cannot be applied: {found.meta.get('why')}")
    keep = int((datetime.now(UTC) + timedelta(days=keep_days)).timestamp())
    await shadow.set_state(client, the_id, shadow.APPLYING)
    total = await cutover(client, shards, the_id, found.meta, 1, keep)
    await shadow.keep_until(client, shards, the_id, keep)
    meta = found.meta | {"applied": datetime.now(UTC).isoformat(timespec="seconds"),
                         "keptUntil": datetime.fromtimestamp(keep, UTC).isoformat(timespec="seconds")}
    await shadow.set_state(client, the_id, shadow.APPLIED, meta)
    return total


async def undo(client: RedisClient, the_id: str) -> int:
    """Put back the counts an applied recount replaced; the downloads it added back (negative: removed)."""
    shards = await stored_shards(client)
    found = await _generation(client, the_id)
    if found.state not in (shadow.APPLIED, shadow.UNDOING):
        raise ConfigError(f"recount {the_id} is {found.state}: only an applied recount can be undone")
    await shadow.set_state(client, the_id, shadow.UNDOING)
    total = await cutover(client, shards, the_id, found.meta, -1, int(datetime.now(UTC).timestamp()) + 86_400)
    await shadow.set_state(client, the_id, shadow.UNDONE, found.meta | {
        "undone": datetime.now(UTC).isoformat(timespec="seconds")})
    return total


async def _generation(client: RedisClient, the_id: str) -> shadow.Generation:
    found = await shadow.generation(client, the_id)
    if found is None:
        raise ConfigError(f"no recount {the_id} on record (never made, discarded, or its kept time is over)")
    return found


async def discard(client: RedisClient, the_id: str) -> int:
    """Delete a recount that is not applied; the keys deleted."""
    found = await _generation(client, the_id)
    if found.state in (shadow.APPLYING, shadow.APPLIED, shadow.UNDOING):
        raise ConfigError(f"recount {the_id} is {found.state}: undo it before discarding it")
    return await shadow.discard(client, await stored_shards(client), the_id)


def parse_sources(values: Sequence[str]) -> tuple[str, ...]:
    """``kafka`` alone, or archive files."""
    if not values or tuple(values) == (KAFKA,):
        return (KAFKA,)
    if KAFKA in values:
        raise ConfigError("--source is kafka, or archive files: not both")
    return tuple(values)
