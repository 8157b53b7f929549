"""A recount's reading and judging split over processes (``--jobs``).

Judging one event is the worker's own Python (parse, rules): one core judges some tens of
thousands a second, so a busy month is split. Each job is a forked copy of the recount
process (it inherits the plan, the rules and the repo metadata, nothing is pickled on the
way in) that judges its share of the sources with a fresh :class:`~stream.recount.judge.Judge`
and hands back its :class:`~stream.recount.judge.Verdicts`; the parent merges them. Every
figure of a judge is a sum or a union over events, so the merge is exact whatever the
split: the shadow is written once, by the parent, from the merged tallies.

Jobs never write to Redis (nor does anything else while counting: see
:mod:`stream.recount.job`), so a job killed at any moment leaves nothing live changed; the
parent fails loudly when a job dies or fails, and a recount run again starts over.

- Kafka: the partitions are dealt to the jobs, the longest spans first, each job to the
  least loaded. Each record is judged by its own Kafka timestamp, whichever job reads it.
- Archives: each job takes a run of consecutive files (balanced by size). Their clock is
  the watermark, the latest event time read so far *over every earlier file*; a job starts
  with none. After all jobs, each job's share is exact if no event it judged lies beyond
  the lateness window of the watermark of the files before its share (a larger watermark
  only rejects more, and only events older than it less the lateness); a share that fails
  this is judged again in the parent with that watermark (see :func:`judge_archives`).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from stream.errors import HubcounterError
from stream.recount.judge import Judge, Verdicts

T = TypeVar("T")
Share = Callable[[Judge], int]  # judges one share of the sources; the events it read


class JobFailed(HubcounterError, RuntimeError):
    """A recount job died or failed (its error is the cause)."""


def default_jobs() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def deal(sizes: Sequence[int], jobs: int) -> list[list[int]]:
    """Indexes of ``sizes`` dealt to at most ``jobs`` groups: largest first, each to the
    group with least so far (groups keep the order of their indexes; empty groups dropped)."""
    groups: list[list[int]] = [[] for _ in range(max(jobs, 1))]
    loads = [0] * len(groups)
    for index in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        least = loads.index(min(loads))
        groups[least].append(index)
        loads[least] += sizes[index]
    return [sorted(group) for group in groups if group]


def runs(sizes: Sequence[int], jobs: int) -> list[list[int]]:
    """Indexes of ``sizes`` cut into at most ``jobs`` runs of consecutive indexes, of about
    equal total size (the order of the sources is kept within and across runs)."""
    total, out, current, done = sum(sizes), [], [], 0
    for index, size in enumerate(sizes):
        current.append(index)
        done += size
        if len(out) < jobs - 1 and done * jobs >= total * (len(out) + 1):
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def _child(share: Share, fresh: Callable[[], Judge], conn: Connection) -> None:
    try:
        _die_with_parent()
        judge = fresh()
        read = share(judge)
        conn.send((read, judge.verdicts()))
    except BaseException as exc:  # handed to the parent, which raises it
        with contextlib.suppress(Exception):  # else the parent sees the job die without a reply
            conn.send(JobFailed(f"recount job {os.getpid()} failed: {type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _die_with_parent() -> None:
    """Linux: the job is killed with its parent (a killed recount leaves no job reading)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _collect(pipes: list[tuple[Any, Connection]]) -> list[tuple[int, Verdicts]]:
    out = []
    try:
        for process, conn in pipes:
            try:
                found = conn.recv()
            except EOFError:
                process.join()
                raise JobFailed(f"recount job {process.pid} died (exit code {process.exitcode})") from None
            if isinstance(found, JobFailed):
                raise found
            out.append(found)
            process.join()
    finally:
        for process, _ in pipes:
            if process.is_alive():
                process.kill()
                process.join()
    return out


async def judge_shares(shares: Sequence[Share], fresh: Callable[[], Judge]) -> list[tuple[int, Verdicts]]:
    """Each share judged by a forked job with ``fresh()``'s judge; (events read, verdicts)
    per share, in order. One share is judged in this process."""
    if len(shares) == 1:
        judge = fresh()
        read = await asyncio.to_thread(shares[0], judge)
        return [(read, judge.verdicts())]
    context = multiprocessing.get_context("fork")
    pipes = []
    try:
        for share in shares:
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(target=_child, args=(share, fresh, sender), daemon=True)
            process.start()
            sender.close()
            pipes.append((process, receiver))
    except BaseException:
        for process, _ in pipes:
            process.kill()
        raise
    return await asyncio.to_thread(_collect, pipes)


async def judge_kafka(spans: Sequence[Any], jobs: int, fresh: Callable[[], Judge],
                      read_share: Callable[[Sequence[Any], Judge], int], into: Judge) -> int:
    """Judge the Kafka ``spans`` over ``jobs`` processes into ``into``; the records read."""
    groups = deal([span.end - span.start for span in spans], jobs)
    shares = [_bind(read_share, [spans[i] for i in group]) for group in groups]
    read = 0
    for count, verdicts in await judge_shares(shares, fresh):
        into.merge(verdicts)
        read += count
    return read


async def judge_archives(paths: Sequence[str | Path], jobs: int, fresh: Callable[[], Judge],
                         read_share: Callable[[Sequence[str | Path], Judge], int], into: Judge) -> int:
    """Judge the archives over ``jobs`` processes into ``into``, exactly as one process
    reading them in order would (see the module docstring); the lines read."""
    groups = runs(_sizes(paths), jobs)
    parts = [[paths[i] for i in group] for group in groups]
    found = await judge_shares([_bind(read_share, part) for part in parts], fresh)
    read, before = 0, 0  # before: the watermark of every file before this share
    for part, (count, verdicts) in zip(parts, found, strict=True):
        if before and verdicts.first_judged_ms < before - into.lateness_ms:
            judge = fresh()
            judge.watermark_ms = before
            count = await asyncio.to_thread(read_share, part, judge)
            verdicts = judge.verdicts()
        into.merge(verdicts)
        read += count
        before = max(before, verdicts.watermark_ms)
    return read


def _sizes(paths: Sequence[str | Path]) -> list[int]:
    return [os.path.getsize(path) for path in paths]


def _bind(read_share: Callable[[Sequence[T], Judge], int], part: Sequence[T]) -> Share:
    return lambda judge: read_share(part, judge)
