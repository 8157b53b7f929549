"""``hubcounter why`` and ``hubcounter export``: a publisher's analytics on the command line.

``why`` says which requests for a model's files were candidates but did not count, and
the rule that decided: the answer to "why are my downloads 0?". ``export`` writes a repo's
(or an organisation's) breakdown as CSV, one row per repo, day and value.
"""

from __future__ import annotations

import asyncio
import csv
import sys
from datetime import timedelta

import click

from stream.api.commands import redis_options
from stream.options import parse_repo_id
from stream.rules import load_registry
from stream.store.analytics import DIMENSIONS, OTHER, AnalyticsReader
from stream.store.connect import RedisConfig, connect
from stream.store.reader import CounterReader, today_utc


@click.command()
@click.argument("repo")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 31),
              help="Days ending today (UTC) to look back over.")
@click.option("--rules", "rules_file", type=click.Path(exists=True, dir_okay=False), envvar="HUBCOUNTER_RULES",
              help="The workers' operator rules file [env HUBCOUNTER_RULES].")
@redis_options
def why(repo: str, days: int, rules_file: str | None, redis: RedisConfig) -> None:
    """Which requests for REPO's files (model:org/name) did not count as downloads, and why."""
    repo_type, name = parse_repo_id(repo)
    if repo_type != "model":
        raise click.BadParameter("every dataset file request is a download candidate: ask about a model", "repo")
    registry = load_registry(rules_file)

    async def run() -> int:
        client = await connect(redis)
        try:
            today = today_utc()
            missed = await AnalyticsReader(CounterReader(client)).uncounted(
                f"model:{name}", today - timedelta(days=days - 1), today)
        finally:
            await client.aclose()
        if missed is None:
            click.echo(f"nothing counted or missed for model:{name} in the last {days} days", err=True)
            return 1
        if not missed:
            click.echo(f"every candidate request for model:{name} in the last {days} days counted")
            return 0
        width = max(len(m.path) for m in missed)
        click.echo(f"{'requests':>9}  {'path':<{width}}  why it did not count")
        for m in missed:
            reason = ("other paths, fewer requests each" if m.path == OTHER
                      else registry.explain(m.library, m.path).reason)
            click.echo(f"{m.requests:>9}  {m.path or '(other)':<{width}}  {reason}")
        return 0

    sys.exit(asyncio.run(run()))


@click.command()
@click.argument("repo", required=False)
@click.option("--org", help="Every repo of this organisation instead of one REPO.")
@click.option("--by", required=True, type=click.Choice(DIMENSIONS), help="The dimension to break down by.")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 400),
              help="Days ending today (UTC).")
@redis_options
def export(repo: str | None, org: str | None, by: str, days: int, redis: RedisConfig) -> None:
    """Write REPO's (or --org's) downloads per day and value as CSV on standard output.

    Columns: repoType,repoName,date,dimension,value,downloads; the value is empty for the
    rest of a day's values, summed, once the day keeps only its top values.
    """
    if (repo is None) == (org is None):
        raise click.UsageError("give either a REPO or --org ORG")

    async def run() -> None:
        client = await connect(redis)
        try:
            reader = CounterReader(client)
            analytics = AnalyticsReader(reader)
            repo_keys = (await reader.org_repo_keys(org)) if org else ["{}:{}".format(*parse_repo_id(repo or ""))]
            today = today_utc()
            writer = csv.writer(sys.stdout)
            writer.writerow(("repoType", "repoName", "date", "dimension", "value", "downloads"))
            for repo_key in repo_keys:
                found = await analytics.breakdown(repo_key, today - timedelta(days=days - 1), today, by)
                repo_type, _, name = repo_key.partition(":")
                for day, values in sorted((found.daily if found else {}).items()):
                    writer.writerows((repo_type, name, day, by, value, n) for value, n in values)
        finally:
            await client.aclose()

    asyncio.run(run())
