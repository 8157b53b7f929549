"""The FastAPI app factory: routes, error handlers, metrics and the dashboard.

``create_app(redis_url)`` builds a stateless app: a Redis connection pool is all it
holds. ``app_from_env`` is the factory uvicorn's worker processes call (see
:mod:`stream.api.commands`).
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version

import redis.asyncio as aioredis
from fastapi import FastAPI

from stream.api.access import install_access
from stream.api.breakdown import breakdown_router
from stream.api.cache import TtlCache
from stream.api.dashboard import mount_dashboard
from stream.api.errors import install_handlers
from stream.api.metrics import ApiMetrics, MetricsMiddleware
from stream.api.routes_listing import listing_router
from stream.api.routes_ops import ops_router
from stream.api.routes_pipeline import pipeline_router
from stream.api.routes_repos import repo_router
from stream.api.state import ApiState, utc_now
from stream.settings import AccessSettings
from stream.store.reader import CounterReader

REDIS_URL_ENV = "HUBCOUNTER_API_REDIS_URL"
CACHE_SECONDS_ENV = "HUBCOUNTER_API_CACHE_SECONDS"
DEFAULT_ACCESS = AccessSettings.defaults()
DESCRIPTION = """Download counts of the hub's models and datasets, read from the hubcounter
Redis counters. Shapes follow the Hub's own API: `/api/models/{id}?expand[]=downloads`,
`/api/models?sort=downloads`, and the publisher-analytics CSV. Days are UTC days; "downloads"
is the sum over the last 30 of them, today included. Errors are `{"error": "..."}`."""


def _version() -> str:
    try:
        return version("hubcounter")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


def create_app(redis_url: str, *, cache_seconds: float = 1.0, clock: Callable[[], datetime] = utc_now,
               max_connections: int = 64, freeze_gc: bool = False,
               access: AccessSettings | None = DEFAULT_ACCESS) -> FastAPI:
    """The API and dashboard app, reading the counters in the Redis at ``redis_url``.

    ``access`` sets who may read what and how much (:mod:`stream.api.access`); None builds
    the app without its access layer, every route open and unlimited (the benchmark's
    baseline: never serve that).

    Listings are kept ``cache_seconds`` per process (0: always read Redis). ``clock``
    gives the current time (UTC, aware); tests may pin it. At most ``max_connections``
    Redis connections are open at once; requests beyond wait for one. ``freeze_gc``
    (for a process that serves only this app) moves everything alive at startup out of
    the collector's reach, so a full collection no longer walks every module object.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        redis_url, max_connections=max_connections, timeout=5, socket_connect_timeout=2, socket_timeout=5)
    client = aioredis.Redis(connection_pool=pool)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if freeze_gc:
            # A full collection over the whole heap stalls every request in flight
            # (tens of ms); the startup objects live as long as the process anyway.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            await client.aclose()
            await pool.aclose()

    app = FastAPI(title="hubcounter API", version=_version(), description=DESCRIPTION, lifespan=lifespan,
                  # FastAPI's /docs and /redoc load their scripts from a CDN: nothing external is served.
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.state.api = ApiState(client, CounterReader(client), TtlCache(cache_seconds), clock)
    app.state.metrics = metrics = ApiMetrics()
    install_handlers(app)
    for router in (repo_router(), listing_router(), breakdown_router(), pipeline_router(), ops_router()):
        app.include_router(router)
    mount_dashboard(app)
    if access is not None:
        install_access(app, access, client)  # after the last route: it classifies every one
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def app_from_env() -> FastAPI:
    """The factory for ``uvicorn --factory``: the Redis URL comes from the ``api`` command."""
    redis_url = os.environ.get(REDIS_URL_ENV)
    if not redis_url:
        raise RuntimeError(f"{REDIS_URL_ENV} is not set; start the API with `hubcounter api`")
    return create_app(redis_url, cache_seconds=float(os.environ.get(CACHE_SECONDS_ENV, "1.0")), freeze_gc=True,
                      access=AccessSettings())
