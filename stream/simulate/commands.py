"""``hubcounter simulate``: write simulated CDN request logs to a file or to Kafka."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime

import click

from stream.kafka import KafkaConnection
from stream.options import kafka_options
from stream.simulate.sinks import produce_to_kafka, write_metadata, write_ndjson
from stream.simulate.traffic import Simulation


def parse_time(value: str) -> datetime:
    """An ISO 8601 time with a zone ('Z' or an offset); a naive time is refused."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO 8601 time: {value!r}") from exc
    if parsed.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no timezone (add 'Z' or '+00:00')")
    return parsed


def parse_rate(value: str) -> float:
    """``500``, ``500/s``, ``30000/m`` -> events per second."""
    text = value.strip().lower()
    per = {"s": 1.0, "m": 60.0, "h": 3600.0}
    divisor = 1.0
    if "/" in text:
        text, unit = text.split("/", 1)
        if unit not in per:
            raise click.BadParameter(f"unit of {value!r} is not /s, /m or /h")
        divisor = per[unit]
    try:
        rate = float(text) / divisor
    except ValueError as exc:
        raise click.BadParameter(f"not a rate: {value!r}") from exc
    if rate <= 0:
        raise click.BadParameter("the rate must be positive")
    return rate


@click.command()
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--repos", type=click.IntRange(min=1), default=30_000, show_default=True,
              help="Model repos; datasets (10%) and spaces (6.7%) scale with it.")
@click.option("--datasets", type=click.IntRange(min=0), help="Dataset repos (override).")
@click.option("--spaces", type=click.IntRange(min=0), help="Space repos (override).")
@click.option("--now", "now_text", help="End of the timeline, ISO 8601 with zone [now].")
@click.option("--start", "start_text", help="Start of the timeline [now - days].")
@click.option("--days", type=float, default=3.0, show_default=True,
              help="Length of the timeline when --start is not given.")
@click.option("--count", type=click.IntRange(min=0), help="Number of events.")
@click.option("--duration", type=float, help="Stop after this many seconds.")
@click.option("--rate", "rate_text", help="Events per second to Kafka, e.g. 2000/s [max].")
@click.option("--live", is_flag=True,
              help="Event times start at --now and advance at --rate (needs --rate).")
@click.option("--bad-fraction", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of malformed or out-of-window records.")
@click.option("--url-fraction", type=click.FloatRange(0, 1), default=0.03, show_default=True,
              help="Share of events in the url form.")
@click.option("--out", type=click.Path(dir_okay=False), help="NDJSON file (.gz compresses).")
@click.option("--metadata-out", type=click.Path(dir_okay=False),
              help="NDJSON file for the repo metadata records.")
@kafka_options
@click.option("--topic", default="cdn-requests", show_default=True)
@click.option("--metadata-topic", default="repo-metadata", show_default=True)
def simulate(seed: int, repos: int, datasets: int | None, spaces: int | None,
             now_text: str | None, start_text: str | None, days: float, count: int | None,
             duration: float | None, rate_text: str | None, live: bool, bad_fraction: float,
             url_fraction: float, out: str | None, metadata_out: str | None,
             kafka: KafkaConnection | None, topic: str, metadata_topic: str) -> None:
    """Generate realistic, deterministic hub download traffic (per --seed)."""
    if (out is None) == (kafka is None) and metadata_out is None:
        raise click.UsageError("give exactly one of --out FILE or --bootstrap HOST:PORT")
    if out is not None and kafka is not None:
        raise click.UsageError("--out and --bootstrap are exclusive")
    rate = parse_rate(rate_text) if rate_text else None
    if live and rate is None:
        raise click.UsageError("--live needs --rate")
    if out is not None and rate is not None:
        raise click.UsageError("--rate paces Kafka output; a file is written at full speed")
    if count is None and duration is None:
        count = 100_000
    sim = Simulation(
        seed=seed, repos=repos, datasets=datasets, spaces=spaces,
        now=parse_time(now_text) if now_text else None,
        start=parse_time(start_text) if start_text else None, days=days,
        bad_fraction=bad_fraction, url_fraction=url_fraction,
        live_rate=rate if live else None)
    began = time.perf_counter()
    if metadata_out is not None:
        n = write_metadata(sim, metadata_out)
        click.echo(f"wrote {n} metadata records to {metadata_out}", err=True)
    if out is not None:
        n = write_ndjson(sim, out, count, duration)
        where = out
    elif kafka is not None:
        n = asyncio.run(produce_to_kafka(sim, kafka, topic, metadata_topic,
                                         count=count, duration=duration, rate=rate))
        where = f"{kafka.bootstrap} topic {topic}"
    else:
        return
    elapsed = time.perf_counter() - began
    click.echo(f"wrote {n} events to {where} in {elapsed:.1f} s "
               f"({n / max(elapsed, 1e-9):,.0f}/s)", err=True)


if __name__ == "__main__":  # pragma: no cover
    simulate(sys.argv[1:])
