"""The FastAPI app factory: routes, error handlers, metrics and the dashboard.

``create_app(redis_url)`` builds a stateless app: a Redis client (one Redis or a
cluster, chosen on the first request: see :mod:`stream.store.connect`) is all it holds,
and it only reads. ``app_from_env`` is the factory uvicorn's worker processes call (see
:mod:`stream.api.commands`).
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI

from stream.api.access import install_access
from stream.api.breakdown import breakdown_router
from stream.api.cache import TtlCache
from stream.api.dashboard import mount_dashboard
from stream.api.errors import install_handlers
from stream.api.metrics import ApiMetrics, MetricsMiddleware
from stream.api.routes_analytics import analytics_router
from stream.api.routes_listing import listing_router
from stream.api.routes_npm import npm_router
from stream.api.routes_ops import ops_router
from stream.api.routes_pipeline import pipeline_router
from stream.api.routes_repos import repo_router
from stream.api.state import ApiState, utc_now
from stream.rules import load_registry
from stream.settings import AccessSettings
from stream.store.connect import ClusterMode, RedisConfig

REDIS_URL_ENV = "HUBCOUNTER_API_REDIS_URL"
REDIS_CLUSTER_ENV = "HUBCOUNTER_API_REDIS_CLUSTER"
REPLICAS_ENV = "HUBCOUNTER_API_READ_FROM_REPLICAS"
CACHE_SECONDS_ENV = "HUBCOUNTER_API_CACHE_SECONDS"
RULES_ENV = "HUBCOUNTER_RULES"
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


def create_app(redis_url: str, *, cluster: ClusterMode = "auto", read_from_replicas: bool = False,
               cache_seconds: float = 1.0, clock: Callable[[], datetime] = utc_now, max_connections: int = 64,
               freeze_gc: bool = False, access: AccessSettings | None = DEFAULT_ACCESS,
               rules_file: str | None = None) -> FastAPI:
    """The API and dashboard app, reading the counters in the Redis at ``redis_url``.

    ``redis_url`` may name any node of a Redis Cluster (``cluster``: see
    :class:`stream.store.connect.RedisConfig`); ``read_from_replicas`` spreads a
    cluster's reads over its replicas. Listings are kept ``cache_seconds`` per process
    (0: always read Redis). ``clock`` gives the current time (UTC, aware); tests may pin
    it. At most ``max_connections`` Redis connections are open at once (per node on a
    cluster); requests beyond wait for one on a single Redis. ``freeze_gc`` (for a
    process that serves only this app) moves everything alive at startup out of the
    collector's reach, so a full collection no longer walks every module object.

    ``access`` sets who may read what and how much (:mod:`stream.api.access`); None builds
    the app without its access layer, every route open and unlimited (the benchmark's
    baseline: never serve that). ``rules_file`` is the workers' operator rules file: the
    uncounted requests are explained with the rules that judged them.
    """
    redis = RedisConfig(redis_url, cluster, read_from_replicas, max_connections=max_connections)
    state = ApiState(redis, TtlCache(cache_seconds), load_registry(rules_file), clock)

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
            await state.aclose()

    app = FastAPI(title="hubcounter API", version=_version(), description=DESCRIPTION, lifespan=lifespan,
                  # FastAPI's /docs and /redoc load their scripts from a CDN: nothing external is served.
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.state.api = state
    app.state.metrics = metrics = ApiMetrics()
    install_handlers(app)
    for router in (analytics_router(), npm_router(), repo_router(), listing_router(), breakdown_router(),
                   pipeline_router(), ops_router()):
        app.include_router(router)
    mount_dashboard(app)
    if access is not None:
        install_access(app, access, state.client)  # after the last route: it classifies every one
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def app_from_env() -> FastAPI:
    """The factory for ``uvicorn --factory``: the Redis settings come from the ``api`` command."""
    redis_url = os.environ.get(REDIS_URL_ENV)
    if not redis_url:
        raise RuntimeError(f"{REDIS_URL_ENV} is not set; start the API with `hubcounter api`")
    cluster = os.environ.get(REDIS_CLUSTER_ENV, "auto")
    if cluster not in ("auto", "true", "false"):
        raise RuntimeError(f"{REDIS_CLUSTER_ENV}={cluster!r}: expected auto, true or false")
    return create_app(redis_url, cluster=cluster, read_from_replicas=bool(os.environ.get(REPLICAS_ENV)),
                      cache_seconds=float(os.environ.get(CACHE_SECONDS_ENV, "1.0")), freeze_gc=True,
                      access=AccessSettings(), rules_file=os.environ.get(RULES_ENV) or None)
