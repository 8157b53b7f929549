"""Memory: the worker with a million repos, Redis dedupe entries, the library map itself.

* The worker process: 1,000,000 synthetic repos (each with a library, so each is kept in
  the map) followed by the workload's own metadata go to a new metadata topic; a worker
  loads it and counts the whole workload (verified exact: the extra repos get no events).
  RSS is read after readiness and again after counting, with the peak (``VmHWM``).
* Redis: the real ``CounterStore.apply`` applies tallies holding 1,000,000 distinct
  (dataset, user, 5-minute bucket) entries, in batches of 20,000, on a redis-server of its
  own; ``used_memory`` before and after, and the ``MEMORY USAGE`` of the dedupe sets alone.
* Python: ``tracemalloc`` around loading 1,000,000 records into a ``LibraryMap``.

Memory does not depend on timing, so the worker's run goes on in a thread while the two
others are taken (the timing figures of these runs are not reported for that reason).
"""

from __future__ import annotations

import asyncio
import gc
import random
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import redis.asyncio as aioredis
from aiokafka.admin import NewTopic

from bench import worker_e2e
from bench.kafka_io import Record, produce
from bench.procmem import mib
from stream.counting import DEDUPE_BUCKET_MS, Tally, day_name
from stream.devstack import redis_process
from stream.metadata import LibraryMap
from stream.store.writer import CounterStore, PartitionRange
from stream.topics import ensure_topics

if TYPE_CHECKING:
    from bench.workload import Workload

# Library shares of model repos that name one (roughly the Hub's mix).
LIBRARIES = (("transformers", 50), ("sentence-transformers", 8), ("diffusers", 7), ("peft", 10),
             ("timm", 4), ("gguf", 6), ("open_clip", 2), ("nemo", 2), ("keras", 2), ("spacy", 1),
             ("stable-baselines3", 2), ("mlx", 3), ("onnx", 1), ("setfit", 1), ("my-lab-lib", 1))
_APPLY_BATCH = 20_000


def synthetic_metadata(n: int, seed: int = 11) -> list[Record]:
    """``n`` metadata records of distinct model repos, each naming a library."""
    rng = random.Random(seed)
    names, weights = zip(*LIBRARIES, strict=True)
    libraries = rng.choices(names, weights, k=n)
    out: list[Record] = []
    for i, library in enumerate(libraries):
        flavour = rng.choice(("base", "instruct", "GGUF", "lora"))
        key = f"model:bench-org-{rng.randrange(60_000)}/model-{i:07d}-{flavour}"
        out.append((key.encode(), orjson.dumps({"library_name": library, "tags": []})))
    return out


def library_map_memory(n: int) -> dict[str, Any]:
    """Python heap taken by a ``LibraryMap`` of ``n`` repos (tracemalloc), and its load rate."""
    records = synthetic_metadata(n)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        libraries = LibraryMap()
        for key, value in records:
            libraries.apply(key, value)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    held = current - before
    return {"repos": len(libraries), "traced_mib": mib(held), "traced_peak_mib": mib(peak - before),
            "bytes_per_repo": held / n}


async def _used_memory(client: aioredis.Redis) -> int:
    return int((await client.info("memory"))["used_memory"])


def dedupe_entries(n: int, now: datetime, seed: int = 5) -> list[tuple[str, str, int, str]]:
    """``n`` distinct (dataset key, day, bucket, user) entries over the last day's buckets."""
    rng = random.Random(seed)
    newest = int(now.timestamp() * 1000) // DEDUPE_BUCKET_MS
    entries: set[tuple[str, str, int, str]] = set()
    while len(entries) < n:
        bucket = newest - rng.randrange(288)  # 288 five-minute buckets in a day
        dataset = f"dataset:bench-org-{rng.randrange(300)}/data-{rng.randrange(10)}"  # ~3,000 datasets
        entries.add((dataset, day_name(bucket * DEDUPE_BUCKET_MS), bucket, f"u:{rng.getrandbits(64):016x}"))
    return list(entries)


def dedupe_memory(workdir: Path, n: int) -> dict[str, Any]:
    """Redis memory of ``n`` dedupe entries, on a redis-server started for this alone."""
    server = redis_process(workdir, durable=False)
    server.start()
    try:
        return asyncio.run(_dedupe_memory(f"redis://127.0.0.1:{server.port}/0", n))
    finally:
        server.stop()


async def _dedupe_memory(redis_url: str, n: int) -> dict[str, Any]:
    client = aioredis.from_url(redis_url)
    try:
        store = CounterStore(client, shards=64, lateness=timedelta(days=7))
        await store.ensure_config()
        entries = dedupe_entries(n, datetime.now(UTC))
        before = await _used_memory(client)
        applied = 0
        for offset in range(0, n, _APPLY_BATCH):
            chunk = entries[offset:offset + _APPLY_BATCH]
            tally = Tally(distinct=dict.fromkeys(chunk))  # analytics off: no facets per slot
            outcomes = await store.apply(tally, [PartitionRange("bench-dedupe:0", offset, offset + len(chunk), 0)])
            applied += sum(o.counted for o in outcomes)
        after = await _used_memory(client)
        seen_bytes = 0
        seen_keys = [key async for key in client.scan_iter(match="hc:*:seen:*", count=10_000)]
        async with client.pipeline(transaction=False) as pipe:
            for key in seen_keys:
                pipe.memory_usage(key, samples=0)  # samples=0: measure every member, not an estimate
            seen_bytes = sum(int(size or 0) for size in await pipe.execute())
    finally:
        await client.aclose()
    return {"entries": n, "counted": applied, "used_memory_delta_mib": mib(after - before),
            "bytes_per_entry": (after - before) / n, "seen_sets": len(seen_keys), "seen_sets_mib": mib(seen_bytes),
            "seen_bytes_per_entry": seen_bytes / n}


def metadata_topic(workload: Workload, n: int, topic: str) -> int:
    """Create ``topic`` (compacted) holding ``n`` synthetic repos, then the workload's own
    metadata; returns how many records it holds."""
    asyncio.run(ensure_topics(workload.settings.kafka,
                              [NewTopic(topic, 2, 1, topic_configs={"cleanup.policy": "compact"})]))
    own = [(k.encode(), None if v is None else orjson.dumps(v)) for k, v in workload.metadata]
    asyncio.run(produce(workload.settings.kafka, topic, synthetic_metadata(n) + own))
    return n + len(own)


def worker_rss(workload: Workload, n: int) -> dict[str, Any]:
    """The worker's RSS with ``n`` extra repos in its metadata map (see the module docstring)."""
    topic = f"bench-metadata-{n}"
    held = metadata_topic(workload, n, topic)
    settings = workload.settings_for("bench-memory", metadata_topic=topic)
    figures = worker_e2e.measure(workload, settings, "worker-memory", workload.expected, ready_timeout=900)
    keep = ("verified", "repos_wrong", "rss_ready_mib", "peak_rss_ready_mib", "rss_done_mib", "peak_rss_mib")
    return {"metadata_repos": held, "synthetic_repos": n, **{k: figures[k] for k in keep}}


def run(workload: Workload) -> dict[str, Any]:
    sizes = workload.sizes
    with ThreadPoolExecutor(1) as pool:
        worker = pool.submit(worker_rss, workload, sizes.metadata_repos)
        dedupe = dedupe_memory(workload.workdir, sizes.dedupe_entries)
        library_map = library_map_memory(sizes.library_map_repos)
        return {"worker": worker.result(), "redis_dedupe": dedupe, "library_map": library_map}
