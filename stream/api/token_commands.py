"""``hubcounter tokens create|list|revoke``: the API tokens that open an organisation's private data."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
import orjson
import redis.asyncio as aioredis

from stream.api.tokens import ALL_ORGS, Token, TokenStore, parse_expiry
from stream.errors import ConfigError

T = TypeVar("T")

redis_option = click.option(
    "--redis-url", envvar=["HUBCOUNTER_API_ACCESS_REDIS_URL", "REDIS_URL"], default="redis://127.0.0.1:6379/0",
    show_default=True, help="Redis holding the tokens [env HUBCOUNTER_API_ACCESS_REDIS_URL, else REDIS_URL].")


def _run(redis_url: str, action: Callable[[TokenStore], Awaitable[T]]) -> T:
    async def run() -> T:
        client = aioredis.from_url(redis_url, socket_connect_timeout=5)
        try:
            return await action(TokenStore(client))
        finally:
            await client.aclose()
    try:
        return asyncio.run(run())
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


def _org(value: str) -> str:
    # Imported here: the CLI loads with the worker, which must not import FastAPI.
    from stream.api.errors import BadRequest
    from stream.api.validation import check_org

    if value == ALL_ORGS:
        return value
    try:
        return check_org(value)
    except BadRequest as exc:
        raise click.BadParameter(exc.message, param_hint="--org") from exc


def _status(token: Token, now: datetime) -> str:
    return "expired" if token.expired(now) else "active"


@click.group()
def tokens() -> None:
    """Create, list and revoke API tokens (Redis keeps only a SHA-256 of each)."""


@tokens.command()
@click.option("--org", "orgs", multiple=True, required=True,
              help="An organisation the token may read private data of; repeat for several; * for every one.")
@click.option("--expires", default="90d", show_default=True,
              help="Lifetime: a number and m, h, d or w (90d), or never.")
@click.option("--name", help="A unique name to list and revoke it by [default: the token's id].")
@redis_option
def create(orgs: tuple[str, ...], expires: str, name: str | None, redis_url: str) -> None:
    """Create a token and print it (once: it cannot be shown again)."""
    try:
        lifetime = parse_expiry(expires)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--expires") from exc
    checked = [_org(o) for o in orgs]
    token, stored = _run(redis_url, lambda store: store.create(checked, name, lifetime))
    until = stored.expires.isoformat(timespec="seconds") if stored.expires else "never"
    click.echo(f"created token {stored.name!r} for {', '.join(stored.orgs)}, expires {until}; "
               "it is printed once, below", err=True)
    click.echo(token)


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@redis_option
def list_tokens(as_json: bool, redis_url: str) -> None:
    """List the tokens: name, organisations, creation, expiry and status (never the tokens)."""
    found = _run(redis_url, lambda store: store.all())
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = [
        {"name": t.name, "id": t.token_id, "orgs": list(t.orgs), "created": t.created.isoformat(timespec="seconds"),
         "expires": t.expires.isoformat(timespec="seconds") if t.expires else None, "status": _status(t, now)}
        for t in found]
    if as_json:
        click.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    header = ("NAME", "ID", "ORGS", "CREATED", "EXPIRES", "STATUS")
    table = [header, *((r["name"], r["id"], ",".join(r["orgs"]), r["created"], r["expires"] or "never", r["status"])
                       for r in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@tokens.command()
@click.argument("name")
@redis_option
def revoke(name: str, redis_url: str) -> None:
    """Revoke the token named NAME (every API process refuses it within seconds)."""
    if not _run(redis_url, lambda store: store.revoke(name)):
        click.echo(f"no token named {name!r}", err=True)
        sys.exit(1)
    click.echo(f"revoked token {name!r}", err=True)
