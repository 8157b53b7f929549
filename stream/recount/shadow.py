"""A recount's shadow generation in Redis: its changes, kept apart from the live counters.

Each shard holds, under keys of its own hash tag (``stream.store.keys``), the changes of
its repos: ``hc:{N}:rc:<id>`` maps ``<repo>|<day>`` to the packed figures of a
:class:`~stream.recount.changes.Change`, and ``hc:{N}:rc:<id>:u:<repo>:<day>`` is the
HyperLogLog of its downloaders under the new rules. Nothing live is written: a recount
killed while it counts or writes leaves only shadow keys, which a restart deletes.

The generation's record (``hc:recount:<id>``) says what it is and how far it went:
``counting`` while the shadow is written, ``ready`` once it is whole (the last write),
then ``applying``/``applied`` and ``undoing``/``undone``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson

from stream.recount.changes import Change
from stream.store import keys
from stream.store.connect import RedisClient, store_errors
from stream.store.scripts import Command, run

_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder().decode
_WRITE_CHUNK = 2000  # commands per pipeline
_PFADD_SLICE = 1000

COUNTING, READY, APPLYING, APPLIED, UNDOING, UNDONE = "counting", "ready", "applying", "applied", "undoing", "undone"


@dataclass(frozen=True, slots=True)
class Generation:
    """A recount's record: its state and what it was asked (``meta``, JSON-ready)."""

    id: str
    state: str
    meta: dict[str, Any]


def entry_field(repo_key: str, day_name: str) -> str:
    return f"{repo_key}|{day_name}"


def pack(change: Change) -> bytes:
    return _pack([change.old, change.new, change.library or "", _flat(change.breakdown), _flat(change.uncounted),
                  len(change.downloaders)])


def unpack(field: str, raw: bytes) -> tuple[Change, bool]:
    """A shadow entry as a Change (without its downloaders), and whether it has any."""
    repo, _, day = field.rpartition("|")
    old, new, library, breakdown, uncounted, downloaders = _unpack(raw)
    return Change(repo, day, library or None, old, new, _pairs(breakdown), _pairs(uncounted)), downloaders > 0


def _flat(values: dict[str, int]) -> list[Any]:
    return [x for item in sorted(values.items()) for x in item]


def _pairs(flat: list[Any]) -> dict[str, int]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


async def begin(client: RedisClient, recount_id: str, meta: dict[str, Any]) -> None:
    """Record a recount as counting (before any shadow key is written)."""
    now = datetime.now(UTC)
    with store_errors():
        await client.hset(keys.recount(recount_id), mapping={"state": COUNTING, "meta": orjson.dumps(meta)})
        await client.zadd(keys.RECOUNTS, {recount_id: int(now.timestamp() * 1000)})


async def set_state(client: RedisClient, recount_id: str, state: str, meta: dict[str, Any] | None = None) -> None:
    mapping: dict[str, Any] = {"state": state}
    if meta is not None:
        mapping["meta"] = orjson.dumps(meta)
    with store_errors():
        await client.hset(keys.recount(recount_id), mapping=mapping)


async def generation(client: RedisClient, recount_id: str) -> Generation | None:
    """A recount's record, or None when there is none (never made, discarded or expired)."""
    with store_errors():
        found = await client.hgetall(keys.recount(recount_id))
    if not found:
        return None
    values = {_text(k): v for k, v in found.items()}
    return Generation(recount_id, _text(values["state"]), orjson.loads(values["meta"]))


async def generations(client: RedisClient) -> list[Generation]:
    """Every recount on record, oldest first."""
    with store_errors():
        ids = [_text(i) for i in await client.zrange(keys.RECOUNTS, 0, -1)]
    out = []
    for recount_id in ids:
        found = await generation(client, recount_id)
        if found is not None:
            out.append(found)
    return out


async def write(client: RedisClient, shards: int, recount_id: str, changes: Iterable[Change]) -> int:
    """Write the changes into the shadow (idempotent: the same change, the same keys)."""
    commands: list[Command] = []
    written = 0
    for change in changes:
        shard = keys.shard_of(change.repo, shards)
        commands.append(("HSET", keys.shadow(shard, recount_id), entry_field(change.repo, change.day), pack(change)))
        users = change.downloaders
        hll = keys.shadow_downloaders(shard, recount_id, change.repo, change.day)
        commands += [("PFADD", hll, *users[i:i + _PFADD_SLICE]) for i in range(0, len(users), _PFADD_SLICE)]
        written += 1
        if len(commands) >= _WRITE_CHUNK:
            await run(client, commands, ())
            commands = []
    if commands:
        await run(client, commands, ())
    return written


async def read(client: RedisClient, shards: int, recount_id: str) -> dict[int, list[tuple[Change, bool]]]:
    """Every shard's shadow entries (shard -> [(change, has downloaders)])."""
    replies = await run(client, [("HGETALL", keys.shadow(shard, recount_id)) for shard in range(shards)], ())
    out: dict[int, list[tuple[Change, bool]]] = defaultdict(list)
    for shard, entries in enumerate(replies):
        for field, raw in sorted(entries.items()):
            out[shard].append(unpack(_text(field), raw))
    return out


def shadow_keys(shard: int, recount_id: str, entries: Iterable[tuple[Change, bool]]) -> list[str]:
    """Every key of one shard's shadow (the saved HyperLogLogs of an apply included)."""
    found = [keys.shadow(shard, recount_id), keys.shadow_state(shard, recount_id)]
    for change, _ in entries:
        found.append(keys.shadow_downloaders(shard, recount_id, change.repo, change.day))
        found.append(keys.shadow_saved(shard, recount_id, change.repo, change.day))
    return found


async def discard(client: RedisClient, shards: int, recount_id: str) -> int:
    """Delete a recount's shadow and its record; the number of keys deleted."""
    entries = await read(client, shards, recount_id)
    commands: list[Command] = []
    for shard in range(shards):
        commands += [("DEL", key) for key in shadow_keys(shard, recount_id, entries.get(shard, ()))]
    deleted = sum(int(n) for n in await run(client, commands, ())) if commands else 0
    with store_errors():
        await client.delete(keys.recount(recount_id))
        await client.zrem(keys.RECOUNTS, recount_id)
    return deleted


async def keep_until(client: RedisClient, shards: int, recount_id: str, at: int) -> None:
    """Let the shadow (and so the undo) expire at ``at`` (unix s)."""
    entries = await read(client, shards, recount_id)
    commands: list[Command] = []
    for shard in range(shards):
        commands += [("EXPIREAT", key, at) for key in shadow_keys(shard, recount_id, entries.get(shard, ()))]
    for begin_at in range(0, len(commands), _WRITE_CHUNK):
        await run(client, commands[begin_at:begin_at + _WRITE_CHUNK], ())
    with store_errors():
        await client.expireat(keys.recount(recount_id), at)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
