"""Benchmark of the worker's event parser: ``parse_event`` cost per event.

Run ``python -m bench.parse_bench`` (``--quick`` for a short run, ``--json`` for the
figures as JSON). The events are the simulator's good records (what a worker mostly
reads), taken as they are (all ASCII: the simulator's user agents are ASCII) and with a
non-ASCII character added to each user agent (the case that pays for the whole-message
UTF-8 check). Each figure is the best of several passes over the same events, on fresh
copies of their bytes so no hash or decode is cached.

``--compare FILE`` also loads another version of ``stream/events.py`` (for example
``git show main:stream/events.py > /tmp/events_main.py``) and measures both in turns, in
one process, so machine load falls on both alike.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stream import events
from stream.simulate import Simulation

Parser = Callable[[bytes], Any]


def _events(count: int) -> list[bytes]:
    sim = Simulation(seed=21, repos=20_000, now=datetime.now(UTC))
    return [record.value for record in sim.records(count) if record.bad is None]


def _non_ascii(values: list[bytes]) -> list[bytes]:
    return [value.replace(b'"userAgent":"', '"userAgent":"\u00e9 '.encode(), 1) for value in values]


def _ns_per_event(parsers: dict[str, Parser], values: list[bytes], repeats: int) -> dict[str, float]:
    """Per slice of 1,000 values, each parser's fastest of ``repeats`` passes, in turns.

    Short passes mostly run undisturbed on a shared machine, so the fastest is the cost;
    taking turns slice by slice lets a change of load fall on every parser alike.
    """
    total = dict.fromkeys(parsers, 0.0)
    for start in range(0, len(values), 1000):
        best = dict.fromkeys(parsers, float("inf"))
        for _ in range(repeats):
            for name, parse in parsers.items():
                fresh = [bytes(bytearray(v)) for v in values[start:start + 1000]]
                started = time.perf_counter()
                for value in fresh:
                    parse(value)
                best[name] = min(best[name], time.perf_counter() - started)
        for name in parsers:
            total[name] += best[name]
    return {name: seconds / len(values) * 1e9 for name, seconds in total.items()}


def _load(path: Path) -> Parser:
    spec = importlib.util.spec_from_file_location("events_compared", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.parse_event


def run(quick: bool = False, compare: Path | None = None) -> dict[str, Any]:
    """Events measured and ns per event, ASCII and non-ASCII, for this parser (and ``compare``)."""
    values = _events(50_000 if quick else 200_000)
    mixes = {"ascii": values, "non_ascii": _non_ascii(values)}
    parsers = {"this": events.parse_event, **({"compared": _load(compare)} if compare else {})}
    repeats = 3 if quick else 9
    by_mix = {m: _ns_per_event(parsers, mix, repeats) for m, mix in mixes.items()}
    # What the whole-message UTF-8 check adds: isascii() on every message, a decode on the
    # others; net of the loop and call, measured as the same loop calling len().
    checks = _ns_per_event({"len": bytes.__len__, "isascii": bytes.isascii, "decode": bytes.decode},
                           mixes["non_ascii"], repeats)
    return {"events": len(values), "mean_bytes": round(sum(map(len, values)) / len(values)),
            "ns_per_event": {p: {m: round(by_mix[m][p]) for m in mixes} for p in parsers},
            "check_ns": {name: round(checks[name] - checks["len"]) for name in ("isascii", "decode")}}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.parse_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--compare", type=Path, help="another version of stream/events.py to measure too")
    args = parser.parse_args()
    figures = run(args.quick, args.compare)
    if args.json:
        print(json.dumps(figures))
        return
    print(f"{figures['events']:,} events, {figures['mean_bytes']} bytes on average; ns per event, best pass:")
    for name, mixes in figures["ns_per_event"].items():
        print(f"  {name:9} all-ASCII {mixes['ascii']:6,}   non-ASCII user agent {mixes['non_ascii']:6,}")
    checks = figures["check_ns"]
    print(f"the UTF-8 check alone: isascii() {checks['isascii']} ns, decode() {checks['decode']} ns per message")


if __name__ == "__main__":
    main()
