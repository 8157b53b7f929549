"""The ``hubcounter api`` command: serve the read API and the dashboard with uvicorn."""

from __future__ import annotations

import os

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--redis-url", envvar="REDIS_URL", default="redis://127.0.0.1:6379/0", show_default=True,
              help="Redis holding the counters [env REDIS_URL].")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="uvicorn worker processes; the API is stateless, so more just share the port.")
@click.option("--cache-seconds", default=1.0, show_default=True, type=click.FloatRange(0, 60),
              help="How long each process reuses a listing (top repos); 0 reads Redis every time.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log every request (costs throughput; /metrics counts requests anyway).")
def api(host: str, port: int, redis_url: str, workers: int, cache_seconds: float, log_level: str,
        access_log: bool) -> None:
    """Serve the HTTP API and the dashboard until SIGTERM.

    Who may read what, rate limits, timeouts and CORS come from the HUBCOUNTER_API_*
    environment variables (docs/API.md, "Access").
    """
    from pydantic import ValidationError

    from stream.api.app import CACHE_SECONDS_ENV, REDIS_URL_ENV, create_app
    from stream.api.serving import serve_app, serve_workers
    from stream.settings import AccessSettings

    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise click.BadParameter(f"expected redis://host:port/db, got {redis_url!r}", param_hint="--redis-url")
    try:
        access = AccessSettings()  # worker processes read the same environment again
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from exc
    options = {"host": host, "port": port, "log_level": log_level, "access_log": access_log,
               "timeout_graceful_shutdown": 10, "server_header": False}
    if workers == 1:
        serve_app(create_app(redis_url, cache_seconds=cache_seconds, freeze_gc=True, access=access), **options)
        return
    # Worker processes import the app by name and build it themselves; the URL is handed
    # down through their environment (this command is the edge that reads settings).
    os.environ[REDIS_URL_ENV] = redis_url
    os.environ[CACHE_SECONDS_ENV] = str(cache_seconds)
    serve_workers(workers, **options)
