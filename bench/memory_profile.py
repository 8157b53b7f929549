"""Where the worker's memory goes while it counts: tracemalloc inside a real worker.

Run ``python -m bench.memory_profile`` (``--quick`` for the quick workload). The setup is
the memory benchmark's (``bench.memory.worker_rss``): the workload's events topic and a
metadata topic with a million synthetic repos besides the workload's own. The worker,
``stream.worker.CountingWorker``, then runs in this process: once it is ready, tracemalloc
starts (so only what counting adds is traced) and a snapshot is taken every half second
until the whole topic is counted. The snapshot holding the most is broken down by the
line that allocated, with the two lines that led to it.

Tracemalloc slows the worker, and this process also holds the workload itself, so its
RSS says nothing: the figures to compare with a target are ``python -m bench all --only
memory``'s (a worker process of its own); this says where they come from.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

from bench.memory import metadata_topic
from bench.procmem import mib
from bench.workload import Workload, prepared
from stream.rules import load_registry
from stream.worker import CountingWorker


def _where(stat: tracemalloc.Statistic) -> str:
    """The allocating line, and the two lines that led to it (outside asyncio), innermost first."""
    frames = [f for f in reversed(stat.traceback) if "/asyncio/" not in f.filename] or list(stat.traceback)
    return " < ".join(_short(f) for f in frames)


def _short(frame: tracemalloc.Frame) -> str:
    parts = Path(frame.filename).parts
    shown = parts[parts.index("site-packages") + 1:] if "site-packages" in parts else parts[-2:]
    return f"{'/'.join(shown)}:{frame.lineno}"


async def _count(workload: Workload, metadata_topic: str, snapshot_every: float) -> dict[str, Any]:
    settings = workload.settings_for("bench-memory-profile", metadata_topic=metadata_topic)
    await asyncio.to_thread(workload.flush_redis)  # it runs a loop of its own
    worker = CountingWorker(settings, load_registry())
    task = asyncio.create_task(worker.run())
    await worker.started.wait()
    tracemalloc.start(3)
    best: tracemalloc.Snapshot | None = None
    most = 0
    started = time.monotonic()
    holders: Counter[str] = Counter()
    after_collect = 0
    while worker.metrics.totals.events_read < workload.events:
        await asyncio.sleep(snapshot_every)
        current = tracemalloc.get_traced_memory()[0]
        if current > most:
            most, best, holders = current, tracemalloc.take_snapshot(), _record_holders()
            gc.collect()  # what of it was only waiting for the cyclic collector
            after_collect = tracemalloc.get_traced_memory()[0]
        if task.done():
            task.result()
        if time.monotonic() - started > 900:
            raise TimeoutError("the worker did not count the topic in 15 minutes")
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    worker.stop()
    await task
    assert best is not None
    by_line: Counter[str] = Counter()
    blocks: Counter[str] = Counter()
    for stat in best.statistics("traceback"):
        by_line[_where(stat)] += stat.size
        blocks[_where(stat)] += stat.count
    return {"traced_at_most_snapshot_mib": mib(most), "traced_peak_mib": mib(traced_peak),
            "traced_after_a_full_collection_then_mib": mib(after_collect),
            "top": [(where, round(mib(size) or 0, 1), blocks[where]) for where, size in by_line.most_common(15)],
            "records_held_by": dict(holders.most_common(10))}


def _record_holders() -> Counter[str]:
    """Fetched records alive, by what holds the lists they are in (two levels of referrers)."""
    held: Counter[str] = Counter()
    for obj in gc.get_objects():
        if type(obj) is list and obj and type(obj[0]).__name__ == "DefaultRecord":
            owners = [r for r in gc.get_referrers(obj) if r is not held]
            names = []
            for owner in owners:
                name = type(owner).__name__
                if isinstance(owner, dict):
                    name += "<" + ",".join(sorted({type(o).__name__ for o in gc.get_referrers(owner)})) + ">"
                names.append(name)
            held[" | ".join(sorted(names)) or "nothing"] += len(obj)
    return held



def run(quick: bool, workdir: Path) -> dict[str, Any]:
    """Profile one counting run (see the module docstring); returns the figures."""
    with prepared(quick, workdir) as workload:
        n = workload.sizes.metadata_repos
        topic = f"bench-metadata-profile-{n}"
        held = metadata_topic(workload, n, topic)
        return {"metadata_repos": held, "events": workload.events, **asyncio.run(_count(workload, topic, 0.5))}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hubcounter-memprof-") as tmp:
        figures = run(args.quick, Path(tmp))
    for key, value in figures.items():
        if key not in ("top", "records_held_by"):
            print(f"{key}: {value:,.1f}" if isinstance(value, float) else f"{key}: {value:,}")
    print("fetched records alive at that moment, by what holds their lists:")
    for holder, count in figures["records_held_by"].items():
        print(f"  {count:9,}  {holder}")
    print("most traced while counting, by allocating line (MiB):")
    for where, size, count in figures["top"]:
        print(f"  {size:7.1f}  {count:9,} blocks  {where}")


if __name__ == "__main__":
    main()
