"""Lean fetching of Kafka records, for the events consumer.

aiokafka hands fetched records to ``getmany`` one at a time: a Python generator walks
each record batch, wraps every record in a ``ConsumerRecord`` (eleven fields, built in
Python) and stores the fetch position after each one, and ``getmany`` appends them to
its list one by one. The worker reads three fields of a record; that per-record Python
cost about 1.3 µs a record, a sixth of the whole worker's CPU.

A consumer built with ``value_deserializer=raw_values`` (after :func:`install`) takes
records a whole record batch at a time instead, as the objects aiokafka's C record
parser makes (``offset``, ``key``, ``value``, ``timestamp``, ``headers``; no ``topic``
or ``partition``: the batch's ``TopicPartition`` key says those). The fetch position is
kept as aiokafka keeps it (after the last record handed out, or past the end of a whole
batch), so ``max_records``, seeks, pauses, rebalances and commits behave the same.
A read-committed consumer skips the batches of aborted transactions as aiokafka does
(with aiokafka's own bookkeeping of the aborted producers); control batches are never
records. Every other consumer in the process takes aiokafka's own path unchanged.

This reaches into aiokafka's fetcher (it replaces ``PartitionRecords`` and
``FetchResult.getall``), so the version range is pinned in ``pyproject.toml`` and
``tests/integration/test_records.py`` fails if the lean path stops being taken or stops
being exact.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

from aiokafka.consumer import fetcher as _fetcher
from aiokafka.errors import CorruptRecordException


class Record(Protocol):
    """What the worker reads of a fetched record (a ``ConsumerRecord`` has it too)."""

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


def raw_values(value: bytes | None) -> bytes | None:
    """The value deserializer that marks a consumer for lean records.

    The lean path never calls it; on aiokafka's own path (if :func:`install` was not
    called) it returns the value unchanged, so a marked consumer works either way.
    """
    return value


class _LeanPartitionRecords(_fetcher.PartitionRecords):
    """The records of one fetch response for one partition, taken a batch at a time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lean = self._value_deserializer is raw_values
        self._read_committed = self._isolation_level == _fetcher.READ_COMMITTED
        self._held: list[Any] = []  # records of a batch handed out only in part
        self._held_end = 0  # the position after that whole batch
        if self.lean:
            # aiokafka's own iterator is a generator holding ``self``: a cycle that only its
            # exhaustion breaks, which the lean path never reaches. Unbroken, every fetched
            # response waited for the cyclic collector (tens of MiB at a time).
            self._records_iterator = None

    def __next__(self) -> Any:
        if not self.lean:
            return super().__next__()
        taken, _ = self.take(1)
        if not taken:
            raise StopIteration
        return taken[0]

    def take(self, limit: int | None) -> tuple[list[Any], bool]:
        """Up to ``limit`` records (all if None), and whether none are left after them."""
        room = sys.maxsize if limit is None else limit
        out: list[Any] = []
        records = self._records
        while True:
            held = self._held
            if not held:
                if not records.has_next():
                    return out, True
                batch = records.next_batch()
                if self._check_crcs and not batch.validate_crc():
                    raise CorruptRecordException(f"Invalid CRC - {self._tp}")
                if self._read_committed and self._aborted(batch):
                    self.next_fetch_offset = batch.next_offset
                    continue
                if batch.is_control_batch:  # commit and abort markers: never records
                    self.next_fetch_offset = batch.next_offset
                    continue
                held = list(batch)  # the C parser iterates; no Python per record
                if held and held[0].offset < self.next_fetch_offset:
                    # A fetch from the middle of a batch returns the whole batch.
                    held = [r for r in held if r.offset >= self.next_fetch_offset]
                self._held, self._held_end = held, batch.next_offset
            if len(held) <= room - len(out):
                out += held
                self._held = []
                # Past the whole batch: it may end beyond its last record (compaction).
                self.next_fetch_offset = self._held_end
                if len(out) == room:
                    return out, not records.has_next()
            else:
                cut = room - len(out)
                out += held[:cut]
                self._held = held[cut:]
                self.next_fetch_offset = out[-1].offset + 1
                return out, False

    def _aborted(self, batch: Any) -> bool:
        """Whether ``batch`` belongs to an aborted transaction, exactly as aiokafka decides it.

        The fetch response lists the aborted transactions (producer id, first offset) of
        its range; a producer's batches are skipped from its first aborted offset until
        its abort marker (a control batch). aiokafka's own helpers keep that state.
        """
        self._consume_aborted_up_to(batch.base_offset)
        if batch.is_control_batch and self._contains_abort_marker(batch):
            self._aborted_producers.discard(batch.producer_id)
        return batch.is_transactional and batch.producer_id in self._aborted_producers


_aiokafka_getall = _fetcher.FetchResult.getall


def _getall(self: _fetcher.FetchResult, max_records: int | None = None) -> list[Any]:
    """``FetchResult.getall``, taking lean records whole batches at a time."""
    records = self._partition_records
    if not isinstance(records, _LeanPartitionRecords) or not records.lean:
        return _aiokafka_getall(self, max_records)
    if not self.check_assignment(self._topic_partition) or not self.has_more():
        return []
    taken, exhausted = records.take(max_records)
    self._update_position()
    if exhausted:
        self._partition_records = None
    return taken


def install() -> None:
    """Make aiokafka's fetcher serve marked consumers lean records (idempotent).

    Safe while other consumers run: results already fetched keep aiokafka's own path,
    and the fetcher checks ``FetchResult`` by identity, so that class is patched, not
    replaced.
    """
    _fetcher.PartitionRecords = _LeanPartitionRecords  # type: ignore[misc]
    _fetcher.FetchResult.getall = _getall  # type: ignore[method-assign]


def installed() -> bool:
    """Whether consumers marked with :func:`raw_values` now get lean records."""
    return _fetcher.PartitionRecords is _LeanPartitionRecords and _fetcher.FetchResult.getall is _getall
