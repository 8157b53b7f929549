"""``hubcounter reference``: the exact counts of a log file, computed in one batch pass."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

import click
import orjson
from pydantic import ValidationError

from stream.reference.analytics import Analytics
from stream.reference.rules import RuleBook, RuleBookError
from stream.reference.tally import read_lines, run
from stream.settings import Settings
from stream.store.keys import UNCOUNTED_TOP


@click.command()
@click.argument("log", type=click.Path(exists=True, dir_okay=False))
@click.option("--metadata", type=click.Path(exists=True, dir_okay=False),
              help="NDJSON of repo metadata records, applied in order before the log.")
@click.option("--now", "now_text", help="ISO 8601 time with zone [wall clock].")
@click.option("--lateness-days", type=float,
              help="Events older than this are not counted [env HUBCOUNTER_LATENESS_DAYS; default 7].")
@click.option("--max-message-bytes", type=int,
              help="Larger messages are rejected [env HUBCOUNTER_MAX_MESSAGE_BYTES; default 65536].")
@click.option("--rules", type=click.Path(exists=True, dir_okay=False),
              help="Operator rules file on top of the shipped rules [env HUBCOUNTER_RULES].")
@click.option("--analytics", is_flag=True,
              help="Also what the downloads say, per repo and day: class, client, country, file, "
                   "unique downloaders, uncounted requests. The output is then {\"counts\", \"analytics\"}.")
@click.option("--classes", type=click.Path(exists=True, dir_okay=False),
              help="Classes file that replaces the shipped one [env HUBCOUNTER_CLASSES].")
@click.option("--top-values", type=int, help="Values kept per dimension, repo and day, the rest as \"\" "
                                             "(other) [env HUBCOUNTER_TOP_VALUES; default 50].")
@click.option("--indent", is_flag=True, help="Pretty-print the JSON.")
def reference(log: str, metadata: str | None, now_text: str | None, lateness_days: float | None,
              max_message_bytes: int | None, rules: str | None, analytics: bool, classes: str | None,
              top_values: int | None, indent: bool) -> None:
    """Compute the exact download counts of LOG (NDJSON, .gz ok) in one batch pass.

    Applies every rejection the worker applies, with the worker's settings (the same
    options and environment), and the reference's own rule evaluator.
    """
    given = {"lateness_days": lateness_days, "max_message_bytes": max_message_bytes, "rules_file": rules,
             "classes_file": classes, "top_values": top_values}
    try:
        settings = Settings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from exc
    now = None
    if now_text is not None:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError as exc:
            raise click.BadParameter(f"not an ISO 8601 time: {now_text!r}") from exc
        if now.tzinfo is None:
            raise click.BadParameter(f"{now_text!r} has no timezone")
    try:
        book = RuleBook(settings.rules_file)
    except (OSError, RuleBookError) as exc:
        raise click.UsageError(f"cannot read the rules: {exc}") from exc
    records = list(read_lines(metadata)) if metadata else None
    collected = Analytics(settings.classes_file) if analytics else None
    result = run(read_lines(log), records, now, timedelta(days=settings.lateness_days), book,
                 settings.max_message_bytes, collected)
    option = orjson.OPT_SORT_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
    output: object = result.counts if collected is None else {
        "counts": result.counts, "analytics": collected.shape(settings.top_values, UNCOUNTED_TOP)}
    sys.stdout.buffer.write(orjson.dumps(output, option=option) + b"\n")
    click.echo(" ".join(f"{k}={v}" for k, v in sorted(result.stats.items())), err=True)
