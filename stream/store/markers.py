"""Where each source partition stands in Redis, and where a worker taking it starts from.

Every shard keeps, in ``hc:{N}:pos``, one marker per source partition
(``"<topic>:<partition>"``): the fetch position up to which the shard holds the effects
of every record, i.e. the next offset it has not applied. Positions, not record offsets:
offsets have holes (transaction markers, compaction), and a batch covers the positions
from where the previous one ended to just past its last record, so consecutive batches
leave no gap between them. Every batch moves the marker of *every* shard, whether or not
it has downloads for it, so the shards agree and a Redis that went back in time (a
failover to a replica that lagged, a restore of an older snapshot, an ``everysec`` fsync
lost in a crash) is found behind by the next batch and replayed from where it stands:
what it lost, and no more.

Redis, not the group's committed offset, is the record of what has been counted. A
worker taking a partition (on assignment, or after finding Redis behind) reads every
shard's marker and starts from the lowest (:func:`plan_start`); the committed offset is
compared and logged, and Kafka's first retained offset says whether the replay can be
whole. Markers of the earlier layout (``hc:{N}:applied``: the last offset applied, moved
only for the shards a batch touched) are carried over once, when no ``pos`` marker exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from stream.store import keys
from stream.store.connect import RedisClient
from stream.store.scripts import Command, run


@dataclass(frozen=True, slots=True)
class StartPlan:
    """Where one partition's counting goes on, decided from Redis and Kafka.

    ``start``: the position the next batch's range begins at (what Redis holds up to);
    ``fetch``: where the consumer reads from (``start``, or Kafka's first retained offset
    when that is later); ``base``: the position an absent shard marker stands for while
    counting from ``start`` (a shard with no marker holds nothing of the partition);
    ``write``: markers to create (shard -> position) before counting, when the plan
    carries markers over from the earlier layout; ``missing``: the offsets [from, to) a
    whole replay needs that Kafka no longer holds; ``note``: why the start differs from
    the group's committed offset, for the log.
    """

    start: int
    fetch: int
    base: int
    write: dict[int, int] = field(default_factory=dict)
    missing: tuple[int, int] | None = None
    note: str | None = None


def plan_start(positions: Sequence[int | None], legacy: Sequence[int | None], committed: int | None,
               log_start: int) -> StartPlan:
    """Where to count a partition from (pure).

    ``positions``: each shard's ``pos`` marker (None: none); ``legacy``: each shard's
    earlier-layout marker (the last offset applied); ``committed``: the group's committed
    offset (None: never committed); ``log_start``: Kafka's first retained offset.
    """
    present = [p for p in positions if p is not None]
    if present and len(present) == len(positions):
        start = min(present)
        note = None if committed in (None, start) else (
            f"Redis holds this partition up to {start}, the group committed {committed}")
        return _bounded(StartPlan(start, start, start, note=note), log_start, start)
    if present:
        # A shard without a marker, among shards with one, lost everything it held (every
        # batch moves every shard's marker): it needs the partition from its beginning.
        lost = sum(p is None for p in positions)
        return _bounded(StartPlan(log_start, log_start, log_start,
                                  note=f"{lost} shard(s) hold no marker: they lost their counts; "
                                       f"counting the partition again from {log_start}"), log_start, 0)
    known = [p for p in legacy if p is not None]
    if known:
        # Carried over: a shard holds every record up to its last applied offset, and every
        # shard holds what the group committed (the earlier layout committed after applying).
        floor = committed if committed is not None else max(known) + 1
        write = {shard: max(floor, 0 if last is None else last + 1) for shard, last in enumerate(legacy)}
        start = min(write.values())
        return _bounded(StartPlan(start, start, start, write=write, note="markers carried over from hc:{N}:applied"),
                        log_start, start)
    if committed is None:
        return StartPlan(log_start, log_start, log_start)  # a partition new to Redis and to the group
    # The group counted this partition, Redis holds nothing of it: Redis lost it (or is new).
    return _bounded(StartPlan(log_start, log_start, log_start,
                              note=f"Redis holds nothing of this partition, the group committed {committed}: "
                                   f"counting it again from {log_start}"), log_start, 0)


def _bounded(plan: StartPlan, log_start: int, needed_from: int) -> StartPlan:
    """The plan, reading from Kafka's first retained offset if the records it needs start earlier."""
    if needed_from >= log_start:
        return plan
    return StartPlan(plan.start, max(plan.fetch, log_start), plan.base, plan.write, (needed_from, log_start),
                     plan.note)


async def read_markers(client: RedisClient, shards: int, fields: Sequence[str]
                       ) -> dict[str, tuple[list[int | None], list[int | None]]]:
    """Each field's markers in every shard: (``pos`` positions, earlier-layout offsets)."""
    commands: list[Command] = []
    for shard in range(shards):
        commands.append(("HMGET", keys.position(shard), *fields))
        commands.append(("HMGET", keys.legacy_applied(shard), *fields))
    replies = await run(client, commands, ())
    out: dict[str, tuple[list[int | None], list[int | None]]] = {f: ([], []) for f in fields}
    for shard in range(shards):
        positions, legacy = replies[2 * shard], replies[2 * shard + 1]
        for index, name in enumerate(fields):
            out[name][0].append(_int(positions[index]))
            out[name][1].append(_int(legacy[index]))
    return out


async def write_markers(client: RedisClient, field_name: str, positions: dict[int, int]) -> None:
    """Create the markers a plan carries over (never overwriting one a worker wrote meanwhile)."""
    await run(client, [("HSETNX", keys.position(shard), field_name, position)
                       for shard, position in positions.items()], ())


def _int(value: bytes | str | None) -> int | None:
    return None if value is None else int(value)
