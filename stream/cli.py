"""The ``hubcounter`` command: the edge where settings are built and passed down."""

from __future__ import annotations

import asyncio
import functools
import sys
import types
from collections.abc import Callable
from datetime import timedelta
from typing import Any, get_args

import click
import orjson
import redis.asyncio as aioredis
from pydantic import ValidationError

from stream.api.commands import api
from stream.api.token_commands import tokens
from stream.classes.commands import classes
from stream.demo import demo
from stream.names import RULE as NAME_RULE
from stream.names import valid_repo
from stream.reference import reference
from stream.rules.commands import rules
from stream.settings import Settings
from stream.simulate.commands import simulate

REPO_TYPES = ("model", "dataset", "space")


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


def _click_type(annotation: Any) -> Any:
    args = [a for a in get_args(annotation) if a is not type(None)]
    base = args[0] if isinstance(annotation, types.UnionType) and args else annotation
    return {int: int, float: float, bool: click.BOOL}.get(base, str)


def settings_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add one ``--option`` per :class:`Settings` field; given ones override the environment."""
    for name, info in reversed(Settings.model_fields.items()):
        command = click.option(
            f"--{name.replace('_', '-')}", name, type=_click_type(info.annotation), default=None,
            help=f"{info.description} [env {info.validation_alias}; default {info.default}]",
        )(command)

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        given = {k: kwargs.pop(k) for k in list(kwargs) if k in Settings.model_fields}
        try:
            settings = Settings(**{k: v for k, v in given.items() if v is not None})
        except ValidationError as exc:
            raise click.UsageError(str(exc)) from exc
        return command(settings=settings, **kwargs)

    return wrapper


@main.command()
@settings_options
@click.option("--loglevel", default="info", show_default=True)
def worker(settings: Settings, loglevel: str) -> None:
    """Run the counting worker (Kafka -> rules -> Redis) until SIGTERM."""
    from stream.app import run_worker

    run_worker(settings, loglevel)


@main.command()
@settings_options
@click.option("--partitions", default=8, show_default=True, help="Partitions of the events topic.")
def topics(settings: Settings, partitions: int) -> None:
    """Create the events, dead-letter and metadata topics if they do not exist."""
    from stream.topics import ensure_topics, topic_specs

    asyncio.run(ensure_topics(settings.kafka_bootstrap, topic_specs(settings, partitions)))


def parse_repo_id(value: str) -> tuple[str, str]:
    """``model:org/name`` (or ``org/name``, a model) to (repo type, repo name).

    The name must be one the worker counts (:mod:`stream.names`).
    """
    repo_type, sep, name = value.partition(":")
    if not sep:
        repo_type, name = "model", value
    if repo_type not in REPO_TYPES or not valid_repo(name):
        raise click.BadParameter(f"expected TYPE:org/name with TYPE one of {', '.join(REPO_TYPES)} "
                                 f"and names of {NAME_RULE}, got {value!r}")
    return repo_type, name


@main.command()
@click.argument("repo", required=False)
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 400),
              help="Days of the daily series, ending today (UTC).")
@click.option("--top", type=click.IntRange(1, 1000), help="List the N repos with most downloads in 30 days.")
@click.option("--type", "repo_type", type=click.Choice(["model", "dataset"]), help="Restrict --top to one type.")
@click.option("--redis-url", envvar="REDIS_URL", default="redis://127.0.0.1:6379/0", show_default=True)
def counts(repo: str | None, days: int, top: int | None, repo_type: str | None, redis_url: str) -> None:
    """Print a repo's downloads (``model:org/name``) or the top repos, as JSON."""
    from stream.store.reader import CounterReader, today_utc

    if (repo is None) == (top is None):
        raise click.UsageError("give either a REPO or --top N")
    kind, name = parse_repo_id(repo) if repo is not None else ("", "")

    async def run() -> int:
        client = aioredis.from_url(redis_url)
        reader = CounterReader(client)
        try:
            if top is not None:
                ranked = await reader.top((repo_type,) if repo_type else ("model", "dataset"), top)
                _print([{"id": r.repo, "repoType": r.repo_type, "downloads": r.downloads} for r in ranked])
                return 0
            today = today_utc()
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
