"""The ``hubcounter`` command: the edge where settings are built and passed down."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from typing import Any

import click
import orjson

from stream.api.commands import api, redis_options
from stream.api.token_commands import tokens
from stream.classes.commands import classes
from stream.demo import demo
from stream.errors import ConfigError, KafkaAccessError
from stream.options import parse_repo_id, settings_options
from stream.recount.commands import recount
from stream.reference import reference
from stream.reports import export, why
from stream.rules.commands import rules
from stream.settings import Settings
from stream.simulate.commands import simulate
from stream.store.connect import RedisConfig


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """hubcounter: real-time download counters of a model hub."""


main.add_command(rules)
main.add_command(simulate)
main.add_command(reference)
main.add_command(demo)
main.add_command(api)
main.add_command(tokens)
main.add_command(classes)
main.add_command(why)
main.add_command(export)
main.add_command(recount)


@main.command()
@settings_options
@click.option("--loglevel", default="info", show_default=True)
def worker(settings: Settings, loglevel: str) -> None:
    """Run the counting worker (Kafka -> rules -> Redis) until SIGTERM."""
    from stream.app import run_worker

    try:
        run_worker(settings, loglevel)
    except (KafkaAccessError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@settings_options
@click.option("--partitions", default=8, show_default=True, help="Partitions of the events topic.")
@click.option("--replication-factor", default=1, show_default=True,
              help="Replicas of each topic (3 or more also sets min.insync.replicas=2).")
def topics(settings: Settings, partitions: int, replication_factor: int) -> None:
    """Create the events, dead-letter and metadata topics if they do not exist."""
    from stream.topics import ensure_topics, topic_specs

    asyncio.run(ensure_topics(settings.kafka, topic_specs(settings, partitions, replication_factor)))




@main.command()
@click.argument("repo", required=False)
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 400),
              help="Days of the daily series, ending today (UTC).")
@click.option("--top", type=click.IntRange(1, 1000), help="List the N repos with most downloads in 30 days.")
@click.option("--type", "repo_type", type=click.Choice(["model", "dataset"]), help="Restrict --top to one type.")
@click.option("--by", type=click.Choice(["class", "client", "country", "file"]),
              help="A repo's downloads over --days by traffic class, client, country or file.")
@redis_options
def counts(repo: str | None, days: int, top: int | None, repo_type: str | None, by: str | None,
           redis: RedisConfig) -> None:
    """Print a repo's downloads (``model:org/name``) or the top repos, as JSON."""
    from stream.store.analytics import AnalyticsReader
    from stream.store.connect import connect
    from stream.store.reader import CounterReader, today_utc

    if (repo is None) == (top is None):
        raise click.UsageError("give either a REPO or --top N")
    if by is not None and repo is None:
        raise click.UsageError("--by breaks down one REPO's downloads")
    kind, name = parse_repo_id(repo) if repo is not None else ("", "")

    async def run() -> int:
        client = await connect(redis)
        reader = CounterReader(client)
        try:
            if top is not None:
                ranked = await reader.top((repo_type,) if repo_type else ("model", "dataset"), top)
                _print([{"id": r.repo, "repoType": r.repo_type, "downloads": r.downloads} for r in ranked])
                return 0
            today = today_utc()
            if by is not None:
                split = await AnalyticsReader(reader).breakdown(f"{kind}:{name}", today - timedelta(days=days - 1),
                                                                today, by)
                if split is None:
                    _print({"error": "not found", "id": name, "repoType": kind})
                    return 1
                _print({"id": name, "repoType": kind, "by": by, "total": split.total,
                        "values": [{"value": v or None, "downloads": n} for v, n in split.values]})
                return 0
            found = await reader.repo_counts(kind, name, today - timedelta(days=days - 1), today, today)
            if found is None:
                _print({"error": "not found", "id": name, "repoType": kind})
                return 1
            _print({"id": name, "repoType": kind, "downloads": found.downloads,
                    "downloadsAllTime": found.downloads_all_time, "daily": found.daily})
            return 0
        finally:
            await client.aclose()

    sys.exit(asyncio.run(run()))


def _print(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())
