"""``python -m bench recount [--events N] [--jobs N] [--out docs/BENCHMARKS.md]``: how fast history is recounted.

A simulated month of hub traffic (30,000 model repos) is counted by the real worker
under the old rules (OpenCLIP's ``*pytorch_model.bin`` rule); then the rules change
(OpenCLIP's four weight files, diffusers counting a pipeline by its UNet: about 8% of
the models) and the whole month is recounted into a shadow generation, once from the
events topic on Apache Kafka and once from gzip NDJSON archives of the same events (one
file per day, as a CDN exports them), each with one job and with ``--jobs`` (the cores).
Figures: events read again per second (every event of the period is read and parsed;
the affected ones judged twice), and the Redis memory of the shadow generation
(``MEMORY USAGE`` of its keys, and ``used_memory`` before and after it was written).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import resource
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
import yaml

from bench import machine
from stream.devstack import embedded_stack, free_port, wait_ready, worker_process
from stream.errors import EventError
from stream.events import parse_event
from stream.recount import job, shadow
from stream.recount.judge import Period
from stream.recount.parallel import default_jobs
from stream.settings import Settings
from stream.simulate import Simulation
from stream.simulate.sinks import produce_to_kafka
from stream.store import keys
from stream.store.connect import RedisConfig, connect
from stream.topics import ensure_topics, topic_specs

OLD = {"name": "before", "libraries": {
    "open_clip": {"countDownloads": 'path_extension:"bin" AND path_filename:*pytorch_model'}}}
NEW = {"name": "after", "libraries": {"diffusers": {"filter": {"bool": {"should": [
    {"term": {"path": "model_index.json"}}, {"regexp": {"path": "unet/[^/]*\\.safetensors"}}],
    "minimum_should_match": 1}}}}}
BROKER = "kafka"  # the recount is measured reading Apache Kafka, the broker users run
REPOS = 30_000
PARTITIONS = 8


def run(events: int, jobs: int, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """Count a month under the old rules, then recount it from Kafka and from gzip NDJSON,
    with one job and with ``jobs``."""
    now = datetime.now(UTC)
    sim = Simulation(seed=7, repos=REPOS, now=now, days=30, lateness=timedelta(days=40))
    old_file, new_file = workdir / "old.yaml", workdir / "new.yaml"
    old_file.write_text(yaml.safe_dump(OLD))
    new_file.write_text(yaml.safe_dump(NEW))
    with embedded_stack(workdir=workdir / "stack", broker=BROKER) as stack:
        settings = Settings(kafka_bootstrap=stack.kafka_bootstrap, redis_url=stack.redis_url, lateness_days=40,
                            web_port=free_port(), rules_file=str(old_file), batch_size=20_000)
        asyncio.run(ensure_topics(settings.kafka, topic_specs(settings, PARTITIONS, 1)))
        log(f"producing {events:,} events of a simulated month")
        asyncio.run(produce_to_kafka(sim, settings.kafka, settings.events_topic, settings.metadata_topic,
                                     count=events))
        archives = _write_days(sim.lines(events), workdir)
        log("counting it under the old rules")
        worker = worker_process(settings, workdir, "worker")
        worker.start()
        try:
            wait_ready(settings.web_port, proc=worker)
            _wait_counted(stack.redis_url, settings, events)
        finally:
            worker.stop()
        period = Period((now - timedelta(days=30)).date(), now.date())
        results: dict[str, Any] = {"events": events, "repos": REPOS, "jobs": jobs, "archive_files": len(archives),
                                   "archive_bytes": sum(path.stat().st_size for path in archives), "runs": []}
        for name, sources in (("kafka", (job.KAFKA,)), ("gzip NDJSON", tuple(str(p) for p in archives))):
            for n in sorted({1, jobs}):
                log(f"recounting from {name} with {n} job(s)")
                found = asyncio.run(_recount(settings, job.Request(str(new_file), None, period, None, sources,
                                                                   None, n), stack.redis_url))
                results["runs"].append({"source": name, "jobs": n, **found})
                log(f"  {found['events_per_s']:,.0f} events/s; shadow {found['shadow_bytes']:,} B")
    return results


def _write_days(lines: Iterable[bytes], workdir: Path) -> list[Path]:
    """The events as gzip NDJSON, one file per UTC day of their time, in the order read (a
    line that does not parse goes with the line before it)."""
    days: dict[str, list[bytes]] = {}
    day = ""
    for line in lines:
        with contextlib.suppress(EventError):
            day = datetime.fromtimestamp(parse_event(line).ts_ms / 1000, UTC).date().isoformat()
        days.setdefault(day, []).append(line + b"\n")
    out = []
    for name in sorted(days):
        path = workdir / f"{name or 'first'}.ndjson.gz"
        with gzip.open(path, "wb", compresslevel=6) as handle:
            handle.writelines(days[name])
        out.append(path)
    return out


def _wait_counted(redis_url: str, settings: Settings, events: int, timeout: float = 600.0) -> None:
    """Until every shard's markers cover every record of the topic."""
    deadline = time.monotonic() + timeout
    client = redis.Redis.from_url(redis_url)
    try:
        while time.monotonic() < deadline:
            markers = [client.hgetall(keys.position(s)) for s in range(settings.shards)]
            if all(sum(int(v) for v in m.values()) >= events for m in markers if m) and markers[0]:
                return
            time.sleep(0.5)
    finally:
        client.close()
    raise TimeoutError("the worker did not count the month in time")


async def _recount(settings: Settings, request: job.Request, redis_url: str) -> dict[str, Any]:
    client = await connect(RedisConfig(redis_url, "false"))
    try:
        before = (await client.info("memory"))["used_memory"]
        cpu = _cpu_seconds()
        started = time.perf_counter()
        report = await job.recount(client, settings, request)
        seconds = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu
        after = (await client.info("memory"))["used_memory"]
        shards = await job.stored_shards(client)
        entries = await shadow.read(client, shards, report["id"])
        names = [name for shard in range(shards) for name in shadow.shadow_keys(shard, report["id"],
                                                                               entries.get(shard, ()))]
        sizes = [await client.memory_usage(name) for name in names]
        await job.discard(client, report["id"])
        return {"seconds": seconds, "read": report["read"], "events_per_s": report["read"] / seconds,
                "cpu_s": cpu, "events_per_cpu_s": report["read"] / cpu,
                "judge_s": report["seconds"], "repo_days": report["totals"]["repoDays"],
                "repos": report["totals"]["repos"], "change": report["totals"]["change"],
                "judged": report["events"].get("judged", 0),
                "shadow_bytes": sum(s for s in sizes if s), "used_memory_delta": after - before}
    finally:
        await client.aclose()


def _cpu_seconds() -> float:
    """CPU time of this process and of its children waited for (the recount's jobs; the
    broker and Redis are not waited for while they run, so they are not in it)."""
    mine, jobs = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + jobs.ru_utime + jobs.ru_stime


def markdown(results: dict[str, Any], command: str) -> str:
    """The BENCHMARKS.md section."""
    rows = []
    for r in results["runs"]:
        per_day = r["shadow_bytes"] / max(r["repo_days"], 1)
        rows.append(f"| {r['source']} | {r['jobs']} | {r['read']:,} | {r['seconds']:.1f} s | "
                    f"**{r['events_per_s']:,.0f}** | {r['events_per_cpu_s']:,.0f} | "
                    f"{r['judged']:,} | {r['repos']:,} / {r['repo_days']:,} | {r['shadow_bytes'] / 2**20:.1f} MiB "
                    f"({per_day:,.0f} B per repo-day) | {r['used_memory_delta'] / 2**20:+.1f} MiB |")
    facts = results["meta"]["machine"]
    return "\n".join([
        "## Recount",
        "",
        f"`{command}` ({results['meta']['date']}; {facts.get('nproc', '?')} cores, load average "
        f"{results['meta']['load']}; {facts.get('broker', '?')}): a simulated month of {results['events']:,} "
        f"events over {results['repos']:,} "
        "model repos, counted by the worker under OpenCLIP's old rule, recounted whole after OpenCLIP's and "
        "diffusers' rules changed (about 8% of the models). Every event of the period is read and parsed; "
        "those of the affected repos are judged under both rules. The archives are the same events as "
        f"gzip NDJSON, one file per day ({results['archive_files']} files, "
        f"{results['archive_bytes'] / 2**20:.0f} MiB). Jobs: processes sharing the partitions or the files.",
        "",
        "| source | jobs | events read | time | events/s | events per recount CPU-second | judged twice | "
        "repos / repo-days changed | shadow (MEMORY USAGE) | used_memory change |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "At the best of these rates a busy month (say 300 million events) is read again in about "
        f"{300e6 / _best(results, 'kafka') / 60:,.0f} minutes from Kafka and "
        f"{300e6 / _best(results, 'gzip NDJSON') / 60:,.0f} from gzip archives on this machine (300 million "
        "divided by the events per second); the shadow grows with the repo-days that change, not with the events.",
    ])


def _best(results: dict[str, Any], source: str) -> float:
    return max(r["events_per_s"] for r in results["runs"] if r["source"] == source)


def main(args: Any, log: Callable[[str], None], workdir: Path) -> dict[str, Any]:
    """The ``recount`` command of ``python -m bench``."""
    results = run(args.events, args.jobs or default_jobs(), workdir, log)
    results["meta"] = {"machine": machine.facts(BROKER), "load": machine.load_average(),
                       "date": datetime.now(UTC).date().isoformat()}
    return results
