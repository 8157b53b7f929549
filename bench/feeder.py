"""The steady background load of the latency benchmark (a bench child).

It simulates live traffic (``Simulation(live_rate=...)``: event times from now on), says
it is ready by creating ``--ready``, waits for ``--go`` (whose text is the rate to send
at), then produces at that rate, cycling through what it generated, until ``--stop``
appears or ``--max-seconds`` pass, and writes the rate it achieved. Running in its own
process keeps its CPU off the driver that times the probes; generating ahead keeps the
simulator's cost out of the paced phase.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.child import write_result
from bench.kafka_io import produce_paced
from stream.kafka import KafkaConnection
from stream.simulate import Simulation

_NOMINAL_RATE = 100_000.0  # spacing of the simulated event times; any rate near the real one does


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="paced live traffic (a bench child)")
    for name in ("--bootstrap", "--topic", "--ready", "--go", "--stop", "--result"):
        parser.add_argument(name, required=True)
    parser.add_argument("--count", type=int, required=True, help="distinct records to generate")
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repos", type=int, default=30_000)
    args = parser.parse_args(argv)
    sim = Simulation(seed=args.seed, repos=args.repos, now=datetime.now(UTC), live_rate=_NOMINAL_RATE)
    records = [(r.key, r.value) for r in sim.records(args.count)]
    Path(args.ready).touch()
    go, stop = Path(args.go), Path(args.stop)
    while not go.exists():
        time.sleep(0.005)
    rate = float(go.read_text())
    sent, seconds = asyncio.run(produce_paced(KafkaConnection(args.bootstrap), args.topic, records, rate,
                                              args.max_seconds,
                                              should_stop=stop.exists))
    write_result(args.result, {"sent": sent, "seconds": seconds, "rate": sent / seconds,
                               "distinct_records": len(records)})


if __name__ == "__main__":
    main()
