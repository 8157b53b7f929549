"""``python -m bench all [--broker kafka|tansu] [--quick] [--only NAME ...] [--out docs/BENCHMARKS.md]``.

(``python -m bench fuzz-api [--requests N]`` fuzzes the read API instead: see
``bench/fuzz_api.py``; ``python -m bench recount [--events N]`` measures recounting history:
see ``bench/recount_bench.py``.)

Starts the embedded stack (Apache Kafka by default, or Tansu), produces the workload once,
then runs the selected benchmarks:
the throughput contenders in rounds (each round runs every contender once, in turn, on
the same topic), the latency run at half the worker's best rate, the memory figures, the
rule-engine and event-parser micro-benchmarks, the API benchmark and the API fuzzing
(``fuzz``: generated requests, no 5xx allowed).
Prints the tables; ``--out`` writes the markdown page, ``--json`` the raw figures.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import shlex
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import machine, report, sections
from bench.child import reap
from bench.stats import RunSummary

THROUGHPUT = ("drain", "drain_stock", "worker", "worker_plain", "cluster", "faust", "faust_batched", "quix")
NAMES = (*THROUGHPUT, "latency", "memory", "rollback", "rules", "parse", "redis", "api", "fuzz")
NEEDS_STACK = {*THROUGHPUT, "latency", "memory", "rollback"}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Session:
    """One invocation: the selected benchmarks, their results and their failures."""

    def __init__(self, quick: bool, selected: list[str], runs: int | None, broker: str = "kafka",
                 sizing_repos: int | None = None):
        self.quick, self.selected, self.runs_override, self.broker = quick, selected, runs, broker
        self.sizing_repos = sizing_repos
        self.results: dict[str, Any] = {"throughput": {}, "errors": {}}
        self.peak = 0.0

    def attempt(self, name: str, action: Callable[[], Any]) -> Any:
        """Run one benchmark step; a failure is recorded and the others still run."""
        try:
            return action()
        except Exception as exc:
            log(f"{name} failed: {exc!r}")
            traceback.print_exc(file=sys.stderr)
            self.results["errors"][name] = f"{type(exc).__name__}: {str(exc)[:500]}"
            return None

    def run(self, workdir: Path) -> None:
        if NEEDS_STACK & set(self.selected):
            from bench.workload import prepared

            with prepared(self.quick, workdir, self.broker, log=log) as workload:
                try:
                    self.results["workload"] = workload.describe()
                    self._throughput(workload)
                    self._memory_and_latency(workload)
                    if "rollback" in self.selected:
                        from bench import rollback

                        log("rollback")
                        self.results["rollback"] = self.attempt("rollback", lambda: rollback.run(workload))
                finally:
                    reap()  # before the stack goes: stopping workers still talk to it
        if "rules" in self.selected:
            from bench import rules_bench

            log("rules")
            self.results["rules"] = self.attempt("rules", lambda: rules_bench.run(self.quick))
        if "parse" in self.selected:
            from bench import parse_bench

            log("parse")
            self.results["parse"] = self.attempt("parse", lambda: parse_bench.run(self.quick))
        if "redis" in self.selected:
            from bench import redis_bench

            log("redis: apply costs on one Redis and on clusters, markers, sizing")
            (workdir / "redis").mkdir(exist_ok=True)
            self.results["redis"] = self.attempt(
                "redis", lambda: redis_bench.run(workdir / "redis", self.quick, self.sizing_repos))
        if "api" in self.selected and importlib.util.find_spec("bench.api_bench") is not None:
            log("api")
            self.results["api"] = self.attempt(
                "api", lambda: importlib.import_module("bench.api_bench").run(self.quick))
        if "fuzz" in self.selected:
            from bench import fuzz_api

            log("fuzz")
            fuzzed = self.results["fuzz"] = self.attempt(
                "fuzz", lambda: fuzz_api.run(600 if self.quick else fuzz_api.DEFAULT_REQUESTS, workdir))
            if fuzzed and fuzzed["server_errors"]:
                self.results["errors"]["fuzz"] = f"{fuzzed['server_errors']} answers of 5xx: {fuzzed['failures'][:3]}"

    def _memory_and_latency(self, workload: Any) -> None:
        # The latency rig starts (worker, group join, feeder generating) while the memory
        # figures, which do not depend on timing, are taken.
        rig = self.attempt("latency", lambda: self._rig(workload)) if "latency" in self.selected else None
        try:
            if "memory" in self.selected:
                from bench import memory

                log("memory")
                self.results["memory"] = self.attempt("memory", lambda: memory.run(workload))
            if rig is not None:
                log(f"latency at half of {self.peak:,.0f} events/s")
                self.results["latency"] = self.attempt("latency", lambda: rig.measure(self.peak))
        finally:
            if rig is not None:
                rig.close()

    def _throughput(self, workload: Any) -> None:
        contenders = [name for name in THROUGHPUT if name in self.selected]
        if not contenders:
            return
        entries = {name: getattr(importlib.import_module(f"bench.{_ENTRIES[name][0]}"), _ENTRIES[name][1])
                   for name in contenders}
        rounds = self.runs_override or workload.sizes.runs
        collected: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
        for index in range(rounds):
            for name in contenders:
                load = machine.load_average()
                log(f"round {index + 1}/{rounds}: {name} (load average {load})")
                figures = self.attempt(f"{name} run {index + 1}",
                                       lambda n=name, i=index: entries[n](workload, f"r{i}"))
                if figures is not None:
                    figures["load_avg"] = load
                    collected[name].append(figures)
                    log(f"  {name}: {report.fmt_rate(figures.get('rate'))}, exact={figures.get('verified')}")
        for name, runs in collected.items():
            rates = [run["rate"] for run in runs if run.get("rate")]
            self.results["throughput"][name] = {
                "events": runs[0]["events"] if runs else 0, "runs": runs,
                "summary": RunSummary.of(rates).as_dict() if rates else None}

    def _rig(self, workload: Any) -> Any:
        from bench import latency, worker_e2e

        summary = self.results["throughput"].get("worker", {}).get("summary")
        if summary is None:
            log("latency: no worker figure yet, measuring the worker's rate once")
            summary = {"best": worker_e2e.run_once(workload, "peak")["rate"]}
        self.peak = summary["best"]
        return latency.LiveRig(workload)


# contender -> (module of bench, its function that runs it once)
_ENTRIES = {"drain": ("drain", "run_once"), "drain_stock": ("drain", "run_stock"), "worker": ("worker_e2e", "run_once"),
            "worker_plain": ("worker_e2e", "run_plain"),
            "cluster": ("cluster_e2e", "run_once"),
            "faust": ("faust_baseline", "run_once"), "faust_batched": ("faust_baseline", "run_batched"),
            "quix": ("quix_baseline", "run_once")}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["all", "render", "soak", "recount"],
                        help="all: run the benchmarks (the selection is --only's); "
                             "render: rewrite the page from the --json files of earlier runs; "
                             "soak: workers under chaos for --minutes, then a verdict against the reference; "
                             "recount: a month recounted under new rules from Kafka and from gzip NDJSON")
    parser.add_argument("results", nargs="*", type=Path,
                        help="render: the JSON files of earlier runs (one section each, e.g. Kafka then Tansu)")
    parser.add_argument("--broker", choices=["kafka", "tansu"], default="kafka",
                        help="the broker of the workload: Apache Kafka (one KRaft node; default) or Tansu")
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each: under a minute")
    parser.add_argument("--only", nargs="+", action="extend", choices=NAMES, metavar="NAME",
                        help=f"run only these: {', '.join(NAMES)}")
    parser.add_argument("--skip", nargs="+", action="extend", choices=NAMES, metavar="NAME", default=[],
                        help="leave these out")
    parser.add_argument("--runs", type=int, help="rounds of the throughput contenders [quick 1, full 3]")
    parser.add_argument("--sizing-repos", type=int, help="repos of the Redis sizing fills (redis) [quick 20,000, "
                                                          "full 200,000; 1,000,000 takes about half an hour here]")
    parser.add_argument("--out", type=Path, help="write the markdown page here (e.g. docs/BENCHMARKS.md)")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument("--note", help="a line at the top of the page (e.g. that the figures are provisional)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs of every process)")
    soak = parser.add_argument_group("soak")
    soak.add_argument("--minutes", type=float, default=10.0, help="soak: minutes of chaos [10]")
    soak.add_argument("--workers", type=int, default=3, help="soak: workers in the group [3]")
    soak.add_argument("--rate", type=float, default=3000.0, help="soak: events per second produced [3000]")
    soak.add_argument("--seed", type=int, default=9, help="soak: seed of the traffic and of the chaos [9]")
    parser.add_argument("--events", type=int, default=1_000_000, help="recount: events of the month [1,000,000]")
    parser.add_argument("--jobs", type=int, help="recount: processes of the parallel runs (each source is also "
                                                 "recounted with one) [the cores]")
    return parser.parse_args(argv)


def canonical_command(args: argparse.Namespace) -> str:
    """The command line that reproduces the figures (without output and scratch options)."""
    parts = ["python -m bench all", f"--broker {args.broker}"]
    if args.quick:
        parts.append("--quick")
    if args.only:
        parts.append("--only " + " ".join(args.only))
    if args.skip:
        parts.append("--skip " + " ".join(args.skip))
    if args.runs:
        parts.append(f"--runs {args.runs}")
    if args.sizing_repos:
        parts.append(f"--sizing-repos {args.sizing_repos}")
    if args.out:
        parts.append(f"--out {shlex.quote(str(args.out))}")
    return " ".join(parts)


def publish(runs: list[dict[str, Any]], out: Path | None) -> None:
    """Print the page, and write it to ``out`` when given."""
    page = report.render_all(runs)
    print(page)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(sections.carry_over(out.read_text() if out.exists() else "", page))
        log(f"wrote {out}")


def render(args: argparse.Namespace) -> int:
    if not args.results:
        raise SystemExit("render needs the JSON file of a run (python -m bench all --json FILE)")
    runs = [json.loads(path.read_text()) for path in args.results]
    if args.note:
        runs[0]["meta"]["note"] = args.note
    publish(runs, args.out)
    return 0


def soak(args: argparse.Namespace) -> int:
    from bench import soak as soak_bench

    command = (f"python -m bench soak --minutes {args.minutes:g} --workers {args.workers} "
               f"--rate {args.rate:g} --seed {args.seed}")
    results = soak_bench.run(args.minutes, args.workers, args.rate, args.seed, log=log)
    results["meta"] = {"command": command, "machine": machine.facts(soak_bench.BROKER),
                       "load_end": machine.load_average()}
    _publish_section(args, "soak", soak_bench.markdown(results), results)
    return 0 if results["verdict"]["passed"] else 1


def _publish_section(args: argparse.Namespace, name: str, page: str, results: dict[str, Any]) -> None:
    """Print a command's section; write it into ``--out``'s page and its figures to ``--json``."""
    print(page)
    if args.out:
        sections.write_section(args.out, name, page)
        log(f"wrote the {name} section of {args.out}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


def recount(args: argparse.Namespace) -> int:
    from bench import recount_bench

    command = f"python -m bench recount --events {args.events}" + (f" --jobs {args.jobs}" if args.jobs else "")
    workdir = Path(tempfile.mkdtemp(prefix="hubcounter-bench-"))
    try:
        results = recount_bench.main(args, log, workdir)
    finally:
        reap()
        shutil.rmtree(workdir, ignore_errors=True)
    _publish_section(args, "recount", recount_bench.markdown(results, command), results)
    return 0


def _terminate(signum: int, frame: Any) -> None:
    # SIGTERM (and SIGINT, which a background shell ignores) unwind through every
    # finally, so the broker, Redis and every child process are stopped.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["fuzz-api"]:
        from bench import fuzz_api

        return fuzz_api.main(argv[1:])
    args = parse_args(argv)
    if args.command == "render":
        return render(args)
    if args.command == "soak":
        return soak(args)
    if args.command == "recount":
        return recount(args)
    selected = [name for name in dict.fromkeys(args.only or NAMES) if name not in args.skip]
    session = Session(args.quick, selected, args.runs, args.broker, args.sizing_repos)
    started, load_start = time.monotonic(), machine.load_average()
    workdir = Path(tempfile.mkdtemp(prefix="hubcounter-bench-"))
    try:
        session.run(workdir)
    finally:
        reap()
        if args.keep:
            log(f"scratch directory kept: {workdir}")
        else:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    results = session.results
    results["meta"] = {"command": canonical_command(args), "quick": args.quick, "machine": machine.facts(args.broker),
                       "broker": machine.broker(args.broker),
                       "duration_s": time.monotonic() - started, "load_start": load_start,
                       "load_end": machine.load_average(), "note": args.note}
    publish([results], args.out)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    unverified = [name for name, entry in results["throughput"].items()
                  if any(not run.get("verified", True) for run in entry["runs"])]
    if results["errors"] or unverified:
        log(f"FAILED: errors in {sorted(results['errors'])}, inexact counts in {unverified}")
        return 1
    log(f"done in {results['meta']['duration_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
