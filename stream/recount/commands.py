"""``hubcounter recount``: count history again under new rules, review the diff, apply, undo.

``hubcounter recount --rules NEW --from DAY [--to DAY] [--libraries a,b] [--source kafka|FILE...]``
counts into a shadow generation and prints the diff report (``--format``), writing it as
JSON too (``--report``); ``--apply`` then makes it live. ``--apply --id ID`` applies a
recount reviewed earlier, ``--undo ID`` puts the previous counts back, ``--list`` shows
the recounts on record, ``--versions`` the rules versions, ``--discard ID`` deletes one
not applied. Exit codes: 0 done; 1 refused or failed, with the reason.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from stream.errors import HubcounterError
from stream.options import settings_options
from stream.recount import job, shadow
from stream.recount.judge import Period
from stream.recount.parallel import default_jobs
from stream.recount.report import FORMATS, render
from stream.settings import Settings
from stream.store.connect import RedisClient, RedisConfig, connect
from stream.store.rule_versions import read_versions

T = TypeVar("T")


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected YYYY-MM-DD, got {value!r}") from None


def _run(settings: Settings, action: Callable[[RedisClient], Awaitable[T]]) -> T:
    async def go() -> T:
        client = await connect(RedisConfig(settings.redis_url, settings.redis_cluster))
        try:
            return await action(client)
        finally:
            await client.aclose()
    try:
        return asyncio.run(go())
    except HubcounterError as exc:
        raise click.ClickException(str(exc)) from None


def _say(text: str) -> None:
    click.echo(text, err=True)


@click.command()
@click.option("--rules", "new_rules", type=click.Path(dir_okay=False, exists=True),
              help="The new rules: an operator rules file (YAML or JSON) on top of the shipped rules.")
@click.option("--no-rules-file", is_flag=True, help="The new rules are the shipped rules alone.")
@click.option("--from", "first", help="First UTC day to recount, YYYY-MM-DD.")
@click.option("--to", "last", help="Last UTC day to recount, YYYY-MM-DD, included [today].")
@click.option("--libraries", help="Recount these libraries' repos (comma-separated) [those whose rule changed].")
@click.option("--source", "sources", multiple=True,
              help="kafka (the events topic) or NDJSON archive files, gzip or not (repeat for several) [kafka].")
@click.option("--old-version", help="The rules version that counted events recorded without one "
                                    "(or that counted the archives' events).")
@click.option("--jobs", type=click.IntRange(1, 256), default=None,
              help="Processes that read and judge the events (Kafka partitions or archive files are shared "
                   "out) [the cores].")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="How the diff report is printed.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Write the whole report as JSON here [recount-<id>.json].")
@click.option("--top", type=click.IntRange(1, 100_000), default=20, show_default=True, help="Repos in the table.")
@click.option("--apply", "do_apply", is_flag=True, help="Make the recount live (after counting, or --id ID).")
@click.option("--id", "the_id", help="A recount on record, for --apply.")
@click.option("--undo", "undo_id", help="Put back the counts recount ID replaced.")
@click.option("--discard", "discard_id", help="Delete recount ID (not applied) and its shadow.")
@click.option("--list", "listing", is_flag=True, help="List the recounts on record.")
@click.option("--versions", is_flag=True, help="List the recorded rules versions.")
@click.option("--keep-days", type=click.IntRange(1, 3650), default=30, show_default=True,
              help="How long an applied recount can be undone.")
@settings_options
def recount(new_rules: str | None, no_rules_file: bool, first: str | None, last: str | None, libraries: str | None,
            sources: tuple[str, ...], old_version: str | None, jobs: int | None, fmt: str, report_path: str | None,
            top: int, do_apply: bool, the_id: str | None, undo_id: str | None, discard_id: str | None, listing: bool,
            versions: bool, keep_days: int, settings: Settings) -> None:
    """Count history again under new download rules into a shadow; diff, apply, undo."""
    if listing:
        _print([{"id": g.id, "state": g.state, **g.meta} for g in _run(settings, shadow.generations)])
        return
    if versions:
        found = _run(settings, read_versions)
        _print([{"version": v.version, "name": v.name, "recorded": v.recorded, "operatorFile": v.operator_file}
                for v in found.values()])
        return
    if undo_id:
        total = _run(settings, lambda client: job.undo(client, undo_id))
        _say(f"recount {undo_id} undone: {-total:+,} downloads")
        return
    if discard_id:
        deleted = _run(settings, lambda client: job.discard(client, discard_id))
        _say(f"recount {discard_id} discarded ({deleted:,} keys)")
        return
    if do_apply and the_id:
        _apply(settings, the_id, keep_days)
        return
    if first is None or (new_rules is None and not no_rules_file):
        raise click.UsageError("give --rules FILE (or --no-rules-file) and --from DAY; or --apply --id, --undo, "
                               "--list, --versions, --discard")
    period_first, period_last = _day(first), _day(last) or datetime.now(UTC).date()
    assert period_first is not None
    try:
        request = job.Request(new_rules, settings.rules_name, Period(period_first, period_last),
                              tuple(n.strip() for n in libraries.split(",") if n.strip()) if libraries else None,
                              job.parse_sources(sources), old_version, jobs or default_jobs())
    except (ValueError, HubcounterError) as exc:
        raise click.UsageError(str(exc)) from None
    report = _run(settings, lambda client: job.recount(client, settings, request, _say))
    path = Path(report_path or f"recount-{report['id']}.json")
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    click.echo(render(report, fmt, top), nl=False)
    _say(f"report written to {path}; apply with: hubcounter recount --apply --id {report['id']}")
    if do_apply:
        _apply(settings, report["id"], keep_days)


def _apply(settings: Settings, the_id: str, keep_days: int) -> None:
    total = _run(settings, lambda client: job.apply(client, the_id, keep_days))
    _say(f"recount {the_id} applied: {total:+,} downloads; undo with: hubcounter recount --undo {the_id}")


def _print(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":  # pragma: no cover
    recount(sys.argv[1:])
