"""Turning the figures into tables: the console summary and ``docs/BENCHMARKS.md``.

Pure functions of the results dict that ``python -m bench`` collects (no I/O here), so
the formatting is unit-tested and a re-run regenerates the whole page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.method import METHOD
from bench.stats import ratio

TITLES = {
    "drain": "Raw drain, lean: the worker's own fetch path and CRC setting, no decoding, no Redis",
    "drain_stock": "Raw drain, stock aiokafka `getmany` (`ConsumerRecord`s, CRC checks)",
    "worker": "hubcounter worker, end to end (`hubcounter worker`)",
    "worker_plain": "hubcounter worker with analytics off (`HUBCOUNTER_ANALYTICS=false`): counts only",
    "cluster": "hubcounter worker on a 3-master Redis Cluster (`REDIS_URL` = one node)",
    "faust": "faust-streaming, idiomatic agent, a Redis write per event",
    "faust_batched": "faust-streaming, batched agent (`take_events`), a Redis pipeline per batch",
    "quix": "Quix Streams, StreamingDataFrame + batching Redis sink",
}
DRAINS = ("drain", "drain_stock")
WORKER_GOAL_RATE = 150_000
WORKER_GOAL_SHARE = 0.40
CLUSTER_GOAL_SHARE = 0.85  # the cluster may cost the worker at most 15%
ANALYTICS_GOAL_SHARE = 0.80  # every breakdown on keeps at least 80% of the counts-only rate


def fmt_rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}/s"


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}×" if value >= 0.01 else f"{value:.4f}×"


def fmt_num(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}{unit}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def drain_median(results: dict[str, Any]) -> float | None:
    drain = results.get("throughput", {}).get("drain")
    return drain["summary"]["median"] if drain and drain.get("summary") else None


def _exact(entry: dict[str, Any]) -> str:
    runs = entry.get("runs", [])
    if not runs:
        return "—"
    good = sum(1 for run in runs if run.get("verified"))
    return f"{'yes' if good == len(runs) else 'NO'} ({good}/{len(runs)} runs)"


def summary_rows(results: dict[str, Any]) -> list[list[str]]:
    """One row per figure: what, absolute value, ratio to the raw drain, runs, exactness."""
    reference = drain_median(results)
    rows = []
    for name, entry in results.get("throughput", {}).items():
        summary = entry.get("summary")
        if not summary:
            rows.append([TITLES.get(name, name), "failed", "—", "0", "—"])
            continue
        absolute = f"median {fmt_rate(summary['median'])}, best {fmt_rate(summary['best'])}"
        rows.append([f"{TITLES.get(name, name)} ({entry['events']:,} events)", absolute,
                     fmt_ratio(ratio(summary["median"], reference)), str(summary["runs"]),
                     "read all" if name in DRAINS and _exact(entry).startswith("yes") else _exact(entry)])
    latency = results.get("latency")
    if latency and "p99_ms" in latency:
        rows.append([f"Latency, event to counter, under {fmt_rate(latency['achieved_rate'])} of live traffic "
                     "(the rate achieved; the target was half the worker's best)",
                     f"p50 {latency['p50_ms']:,.0f} ms, p99 {latency['p99_ms']:,.0f} ms "
                     f"({latency['probes_seen']} probes)", "—", "1", "—"])
    memory = results.get("memory") or {}
    worker = memory.get("worker")
    if worker:
        absolute = (f"{fmt_num(worker['peak_rss_mib'], ' MiB', 0)} peak after counting the workload "
                    f"(at readiness: {fmt_num(worker['rss_ready_mib'], ' MiB', 0)})")
        small = [run["peak_rss_mib"] for run in results.get("throughput", {}).get("worker", {}).get("runs", [])
                 if run.get("peak_rss_mib")]
        if small:
            repos = results.get("workload", {}).get("repos_in_metadata", 0)
            absolute += f"; with the workload's {repos:,} repos: {fmt_num(max(small), ' MiB', 0)} peak"
        rows.append([f"Worker peak RSS, {worker['metadata_repos']:,} repos in the metadata map", absolute,
                     "—", "1", "yes" if worker.get("verified") else "NO"])
    dedupe = memory.get("redis_dedupe")
    if dedupe:
        rows.append([f"Redis memory, {dedupe['entries']:,} dataset dedupe entries",
                     f"{fmt_num(dedupe['seen_sets_mib'], ' MiB')} in dedupe sets "
                     f"({dedupe['seen_bytes_per_entry']:.0f} B/entry); "
                     f"used_memory +{fmt_num(dedupe['used_memory_delta_mib'], ' MiB')}",
                     "—", "1", "—"])
    library_map = memory.get("library_map")
    if library_map:
        rows.append([f"Python heap of a LibraryMap of {library_map['repos']:,} repos (tracemalloc)",
                     f"{fmt_num(library_map['traced_mib'], ' MiB')} ({library_map['bytes_per_repo']:.0f} B/repo)",
                     "—", "1", "—"])
    rules = results.get("rules")
    if rules:
        rows.append(["Rule engine: `Registry.counts`, warm memo", fmt_rate(rules["counts_warm_per_s"]),
                     "—", "best of passes", "—"])
    return rows


def goal_rows(results: dict[str, Any]) -> list[list[str]]:
    worker = results.get("throughput", {}).get("worker", {}).get("summary")
    reference = drain_median(results)
    rows = []
    if worker:
        rows.append(["Worker events/s per process", f">= {WORKER_GOAL_RATE:,}/s",
                     f"median {fmt_rate(worker['median'])}, best {fmt_rate(worker['best'])}",
                     _met(worker["median"] >= WORKER_GOAL_RATE)])
        share = ratio(worker["median"], reference)
        if share is not None:
            rows.append(["Worker rate / raw drain rate", f">= {WORKER_GOAL_SHARE:.0%}", f"{share:.0%} (medians)",
                         _met(share >= WORKER_GOAL_SHARE)])
    plain = results.get("throughput", {}).get("worker_plain", {}).get("summary")
    if worker and plain:
        share = ratio(worker["median"], plain["median"])
        if share is not None:
            rows.append(["Worker rate with every breakdown on / counts only", f">= {ANALYTICS_GOAL_SHARE:.0%}",
                         f"{share:.0%} (medians)", _met(share >= ANALYTICS_GOAL_SHARE)])
    cluster = results.get("throughput", {}).get("cluster", {}).get("summary")
    if worker and cluster:
        share = ratio(cluster["median"], worker["median"])
        if share is not None:
            rows.append(["Worker rate on a 3-master cluster / on one Redis", f">= {CLUSTER_GOAL_SHARE:.0%}",
                         f"{share:.0%} (medians)", _met(share >= CLUSTER_GOAL_SHARE)])
    latency = results.get("latency")
    if latency and "p99_ms" in latency:
        rows.append(["Event-to-counter p99 at 50% of peak", "< 1,000 ms", f"{latency['p99_ms']:,.0f} ms",
                     _met(latency["p99_ms"] < 1000)])
    for goal, ok in ((results.get("api") or {}).get("goals") or {}).items():
        rows.append([f"API: {goal}", "(in the goal)", "see the API benchmark below", _met(bool(ok))])
    return rows


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def run_rows(results: dict[str, Any]) -> list[list[str]]:
    """Every throughput run: wall-clock rate and rate per CPU-second of the contender's process."""
    rows = []
    for name, entry in results.get("throughput", {}).items():
        for i, run in enumerate(entry.get("runs", []), 1):
            cpu = run.get("cpu_seconds")
            measured = run["events"] - run.get("first_batch", 0)
            rows.append([name, str(i), f"{run['events']:,}", fmt_num(run.get("seconds"), " s", 2),
                         fmt_rate(run.get("rate")), fmt_num(cpu, " s", 2),
                         fmt_rate(measured / cpu if cpu else None),
                         "—" if "verified" not in run else ("yes" if run["verified"] else "NO"),
                         fmt_num(run.get("load_avg"), "", 2)])
    return rows


def _facts(mapping: dict[str, Any]) -> str:
    return "\n".join(f"- {key.replace('_', ' ')}: {value}" for key, value in mapping.items())


def render_all(runs: Sequence[dict[str, Any]]) -> str:
    """The whole markdown page: one section per run (say, on Apache Kafka, then on Tansu),
    then how the figures are measured."""
    return "\n".join([*(render(results, level=1 if i == 0 else 2, method=False) for i, results in enumerate(runs)),
                      METHOD.strip(), ""])


def render(results: dict[str, Any], level: int = 1, method: bool = True) -> str:
    """The page of one run (``level`` 2 makes it a section of a longer page)."""
    meta = results["meta"]
    sub = "#" * level
    title = f"Benchmarks on {meta['broker']}" if meta.get("broker") else "Benchmarks"
    parts = [f"{sub} {title}", ""]
    if meta.get("note"):
        parts += [f"> **{meta['note']}**", ""]
    mode = "quick" if meta["quick"] else "full"
    parts += [f"Latest run: `{meta['command']}` ({mode} mode) on {meta['machine']['date']}, "
              f"{meta['duration_s']:.0f} s in all; one-minute load average {meta['load_start']} at the start, "
              f"{meta['load_end']} at the end.", "",
              "Every throughput figure comes from the same topic on the same machine, the contenders taking "
              "turns within each round; ratios are to the lean raw drain's median (the worker's own fetch "
              "path: the ceiling it can reach). Exact = every repo's daily and all-time counts equal "
              "`stream.reference.compute` over the same records.", "",
              table(["Figure", "Absolute", "Ratio to raw drain", "Runs", "Exact"], summary_rows(results)), ""]
    goals = goal_rows(results)
    if goals:
        parts += [f"{sub}# Goals", "", table(["Goal", "Target", "Measured", "Status"], goals), ""]
    if results.get("errors"):
        parts += [f"{sub}# Failures", "", *(f"- `{k}`: {v}" for k, v in results["errors"].items()), ""]
    runs = run_rows(results)
    if runs:
        parts += [f"{sub}# Every throughput run", "",
                  "Events/CPU-s divides the measured events by the CPU time of the contender's own process "
                  "(not the broker's or Redis's): a figure other jobs on the machine disturb less.", "",
                  table(["Contender", "Run", "Events", "Window", "Events/s", "CPU", "Events/CPU-s", "Exact",
                         "Load avg"], runs), ""]
    parts += _details(results, sub)
    parts += [f"{sub}# Workload", "", _facts(_workload_facts(results.get("workload", {}))), "",
              f"{sub}# Machine", "", _facts(meta["machine"]), ""]
    if method:
        parts += [METHOD.strip(), ""]
    return "\n".join(parts)


def _workload_facts(workload: dict[str, Any]) -> dict[str, Any]:
    return {k: v if k == "seed" else _short(v) for k, v in workload.items()
            if k not in ("reference_stats", "timings_s")} | {
        "reference outcome": ", ".join(f"{k} {v:,}" for k, v in workload.get("reference_stats", {}).items())}


def _details(results: dict[str, Any], sub: str = "#") -> list[str]:
    out: list[str] = []
    latency = results.get("latency")
    if latency:
        out += [f"{sub}# Latency details", "", _facts({k: _short(v) for k, v in latency.items()}), ""]
    for name, figures in (results.get("memory") or {}).items():
        out += [f"{sub}# Memory: {name.replace('_', ' ')}", "", _facts({k: _short(v) for k, v in figures.items()}),
                ""]
    out += _redis_details(results.get("redis") or {}, sub)
    rollback = results.get("rollback")
    if rollback:
        out += [f"{sub}# Replay after a Redis rollback", "",
                "A snapshot at a third of the topic, Redis killed and started again from it at two thirds, "
                "the worker running (`bench/rollback.py`). Positions are offsets: each is a record.", "",
                _facts({k: _short(v) for k, v in rollback.items()}), ""]
    for name, title in (("rules", "Rules"), ("parse", "Event parser"), ("api", "API"), ("fuzz", "API fuzzing")):
        figures = results.get(name)
        if figures:
            out += [f"{sub}# {title} benchmark", "", _facts({k: _short(v) for k, v in figures.items()}), ""]
    return out


_TARGETS = (("one_redis", "one Redis"), ("cluster_1_masters", "cluster, 1 master"),
            ("cluster_3_masters", "cluster, 3 masters"))


def redis_apply_rows(apply: dict[str, Any]) -> list[list[str]]:
    """Per target: what a realistic batch, and the markers alone, cost."""
    rows = []
    for key, title in _TARGETS:
        figures = apply.get(key)
        if not figures:
            continue
        batch, markers = figures["batch"], figures["markers_only"]
        rows.append([title, fmt_num(batch["apply_ms_median"], " ms", 1), fmt_num(batch["client_cpu_ms"], " ms", 1),
                     fmt_num(batch["redis_cpu_ms"], " ms", 1), fmt_num(batch["bytes_in_kib"], " KiB", 0),
                     fmt_num(markers["apply_ms_median"], " ms", 1), fmt_num(markers["redis_cpu_ms"], " ms", 2),
                     fmt_num(markers["bytes_in_kib"], " KiB", 1)])
    return rows


def _redis_details(figures: dict[str, Any], sub: str = "#") -> list[str]:
    out: list[str] = []
    apply = figures.get("apply")
    if apply:
        first = next((apply[key] for key, _ in _TARGETS if key in apply), {})
        out += [f"{sub}# Redis: a batch on one Redis and on clusters; the position markers", "",
                f"{apply['batches']} batches of {apply['events_per_batch']:,} simulated events "
                f"({first.get('entries_per_batch', 0):,} (repo, day) entries each) over "
                f"{apply['partitions_per_batch']} partitions, applied by `CounterStore.apply` to "
                f"{apply['shards']} shards (`bench/redis_bench.py`); medians per batch. *Markers only*: the same "
                "ranges with no downloads, i.e. what moving every shard's position markers costs by itself.", "",
                table(["Redis", "Apply", "Client CPU", "Redis CPU", "Sent", "Markers only: apply",
                       "Redis CPU", "Sent"], redis_apply_rows(apply)), ""]
    sizing = figures.get("sizing")
    if sizing:
        full = sizing["thirty_days"]
        out += [f"{sub}# Redis memory: sizing", "",
                f"{full['repos']:,} model repos with downloads on each of {full['days']} days, applied through "
                f"the writer ({full['fill_seconds']} s): used_memory +{full['used_memory_mib']:,.0f} MiB, "
                f"{full['bytes_per_repo_day_total']:,.0f} B per repo-day in all. From a second fill of the same "
                "repos over one day:", "",
                table(["Structure", "Bytes"], [
                    ["per repo (hash overhead, 30-day and all-time leaderboards, org index)",
                     fmt_num(sizing["bytes_per_repo"], "", 0)],
                    ["per repo-day (a field of the repo's hash, an entry of the day's leaderboard)",
                     fmt_num(sizing["bytes_per_repo_day"], "", 0)],
                    ["a repo's hash with 30 days (MEMORY USAGE, sampled)", fmt_num(full["repo_hash_bytes"], "", 0)],
                    ["an entry of a day leaderboard", fmt_num(full["day_zset_bytes_per_entry"], "", 0)],
                    ["the 30-day and all-time leaderboards, per repo", fmt_num(full["boards_bytes_per_repo"], "", 0)],
                    ["the org index, per repo", fmt_num(full["org_index_bytes_per_repo"], "", 0)],
                ]), ""]
    analytics = figures.get("analytics")
    if analytics:
        out += _analytics_sizing(analytics, sizing, sub)
    return out


def _analytics_sizing(figures: dict[str, Any], sizing: dict[str, Any] | None, sub: str) -> list[str]:
    """What the breakdowns cost per repo-day, and a million repos' month with and without them."""
    added = figures["used_memory_added_per_repo_day"]
    rows = [
        ["used_memory the breakdowns and HLLs add, per repo-day", fmt_num(added, " B", 0)],
        ["breakdown hash (class, client, country, file; uncounted paths), per repo-day",
         fmt_num(figures["breakdown_hash_bytes_per_repo_day"], " B", 0)],
        ["the same, closed days folded to the top 50 values (the default K)",
         fmt_num(figures["breakdown_hash_bytes_folded_top_50"], " B", 0)],
        ["the same, folded to the top 10", fmt_num(figures["breakdown_hash_bytes_folded_top_10"], " B", 0)],
        ["downloaders' HyperLogLog (sparse), per repo-day", fmt_num(figures["hll_bytes_per_repo_day"], " B", 0)],
    ]
    text = (f"A month of simulated traffic ({figures['events']:,} events, "
            f"{figures['repo_days_with_downloads']:,} repo-days with downloads, "
            f"{figures['downloads_per_repo_day']} downloads per repo-day on average) counted with the breakdowns "
            "on and off (`bench/redis_bench.py`).")
    if sizing:
        repo_days, plain = 1_000_000 * 30, sizing["bytes_per_repo"] * 1_000_000 + sizing["bytes_per_repo_day"] * 30e6
        text += (f" A million repos with downloads on each of 30 days, from these figures and the sizing above: "
                 f"{plain / 2**30:,.1f} GiB of counters, {(plain + added * repo_days) / 2**30:,.1f} GiB with "
                 "the breakdowns (at this traffic's cardinalities; a repo-day with more distinct clients, countries "
                 "and files takes more until its day is folded).")
    return [f"{sub}# Redis memory: the breakdowns", "", text, "", table(["Structure", "Bytes"], rows), ""]


def _short(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_short(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(_short(v)) for v in value[:8]) + (" …" if len(value) > 8 else "")
    return value
