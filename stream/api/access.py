"""Who may read what: one table of every route, and the one layer at the API's edge that enforces it.

Download counts are public, as on the Hub; an organisation's analytics (its CSV
breakdown, and every finer breakdown of its repos) are private to it. :data:`ROUTES`
classifies every route the app serves by its path template; the app refuses to start when
a route is missing from it, so a new endpoint cannot go out unclassified. Adding one is
one line here, e.g. ``"/api/models/{org}/{name}/downloads/uniques": ORG_PRIVATE``.

For every request, before any handler runs, :class:`AccessLayer`:

1. matches the route (as the router will) and takes its :class:`Rule`;
2. checks the ``Authorization: Bearer <token>`` header, if any (:mod:`stream.api.tokens`);
3. takes the request from the token's rate-limit bucket, or from the client address's
   when there is no valid token (:mod:`stream.api.ratelimit`): 429 with ``Retry-After``;
4. otherwise answers 401 to a token that is unknown, expired or revoked, and, on a
   private route, to a request without one; 403 when the token does not cover the
   organisation the route names (``*`` covers all). These answers are the same whether or
   not the organisation or repo exists, so they never say which private ones do. Each
   refusal counts as one request, so guessing tokens is rate-limited like anything else.

Handlers never check access themselves; the valid token, if any, is in
``request.state.token``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import fastapi.routing
from fastapi import FastAPI
from prometheus_client import Counter
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.convertors import Convertor
from starlette.routing import BaseRoute, Mount, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stream.api.errors import error_response
from stream.api.protection import install_protection
from stream.api.ratelimit import Limit, RateLimiter, address_bucket, token_bucket
from stream.api.responses import JsonResponse
from stream.api.routes_access import document_access, whoami_router
from stream.api.tokens import ALL_ORGS, Token, TokenStore, TokenVerifier, bearer
from stream.errors import ConfigError, StoreRefused, StoreUnavailable
from stream.settings import AccessSettings
from stream.store.connect import ClientSource, LazyClient, RedisConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rule:
    """How one route may be read.

    A private rule with no ``org_param`` (data no organisation owns) is for operator
    tokens (``*``) only.
    """

    private: bool
    org_param: str | None = None  # the path parameter naming the organisation that owns the data
    limited: bool = True  # probes are not: a balancer's health check must never see a 429
    cost: int = 1  # requests taken from the rate-limit bucket


PUBLIC: Final = Rule(private=False)
PROBE: Final = Rule(private=False, limited=False)
ORG_PRIVATE: Final = Rule(private=True, org_param="org")
# A whole organisation's export streams every day of every repo: it costs as much as many lookups.
ORG_EXPORT: Final = Rule(private=True, org_param="org", cost=10)

# Data no organisation owns (a legacy repo's analytics): operator tokens only.
OPERATORS: Final = Rule(private=True)
_ANALYTICS: Final = (*((segment, leaf) for segment in ("models", "datasets")
                       for leaf in ("breakdown", "breakdown.csv", "uniques")), ("models", "uncounted"))

ROUTES: Final[Mapping[str, Rule]] = MappingProxyType({
    # a repo's counts and daily series, as on the Hub
    "/api/models/{org}/{name}": PUBLIC,
    "/api/models/{name}": PUBLIC,
    "/api/models/{org}/{name}/downloads": PUBLIC,
    "/api/models/{name}/downloads": PUBLIC,
    "/api/datasets/{org}/{name}": PUBLIC,
    "/api/datasets/{name}": PUBLIC,
    "/api/datasets/{org}/{name}/downloads": PUBLIC,
    "/api/datasets/{name}/downloads": PUBLIC,
    # listings and leaderboards
    "/api/models": PUBLIC,
    "/api/datasets": PUBLIC,
    # npm-style counts over a period: public, like the daily series they are made of
    "/api/downloads/point/{period}/{type}/{org}/{name}": PUBLIC,
    "/api/downloads/point/{period}/{type}/{name}": PUBLIC,
    "/api/downloads/range/{period}/{type}/{org}/{name}": PUBLIC,
    "/api/downloads/range/{period}/{type}/{name}": PUBLIC,
    # publisher analytics: the organisation's own (a legacy repo has none: operators only)
    "/api/organizations/{org}/download-breakdown": ORG_EXPORT,
    **{f"/api/{segment}/{{org}}/{{name}}/downloads/{leaf}": ORG_PRIVATE
       for segment, leaf in _ANALYTICS},
    **{f"/api/{segment}/{{name}}/downloads/{leaf}": OPERATORS for segment, leaf in _ANALYTICS},
    # the dashboard's data: pipeline totals and public counts
    "/api/pipeline/workers": PUBLIC,
    "/api/pipeline/top": PUBLIC,
    "/api/pipeline/organizations/{org}": PUBLIC,  # the sums of public counts (as /api/models?author=org)
    "/api/pipeline/suggest": PUBLIC,
    "/api/whoami": PUBLIC,
    # the dashboard itself and the API's description
    "/": PUBLIC,
    "/static": PUBLIC,
    "/openapi.json": PUBLIC,
    # operations
    "/healthz": PROBE,
    "/readyz": PROBE,
    "/metrics": PROBE,
})

_REALM = 'Bearer realm="hubcounter"'
_FAILOPEN_LOG_EVERY_S = 10.0


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    message: str
    headers: Mapping[str, str]

    def response(self) -> JsonResponse:
        reply = error_response(self.status, self.message)
        reply.headers.update(self.headers)
        return reply


def _unauthorized(message: str, error: str | None = None) -> Refusal:
    challenge = f'{_REALM}, error="{error}"' if error else _REALM
    return Refusal(401, message, {"WWW-Authenticate": challenge})


NO_TOKEN: Final = _unauthorized("this endpoint is private to the organisation that owns the data: send "
                                "Authorization: Bearer <token> with a token that covers it")
BAD_TOKEN: Final = _unauthorized("the token is unknown, expired or revoked (expected Authorization: Bearer <token>)",
                                 "invalid_token")
STORE_DOWN: Final = Refusal(503, "the token store is unavailable; retry later", {"Retry-After": "1"})
NOT_SERVED: Final = Refusal(404, "Not Found", {})  # public-only: as if the private routes did not exist


@dataclass(frozen=True, slots=True)
class Served:
    """One route the app serves, compiled to match a request's path as the router does."""

    route: BaseRoute
    path: str  # the template: the key of ROUTES
    regex: re.Pattern[str]
    convertors: Mapping[str, Convertor[Any]]

    @classmethod
    def of(cls, route: BaseRoute, path: str) -> Served:
        # A mount serves everything under its path, as Starlette compiles it.
        regex, _, convertors = compile_path(path + "/{path:path}" if isinstance(route, Mount) else path)
        return cls(route, path, regex, convertors)

    def params(self, found: re.Match[str]) -> dict[str, Any]:
        return {k: self.convertors[k].convert(v) for k, v in found.groupdict().items()}


class AccessLayer:
    """The ASGI middleware that applies :data:`ROUTES` to every HTTP request (see the module doc)."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute], public_only: bool, verifier: TokenVerifier,
                 limiter: RateLimiter | None, address_limit: Limit, token_limit: Limit, limiter_errors: Counter):
        self.app = app
        # Built with the middleware stack, at the first request or lifespan event: every
        # route added by then is classified, or the app does not start.
        self.served = served_routes(routes)
        self.rules = classify([s.path for s in self.served], complete=True)
        self.public_only = public_only
        self.verifier = verifier
        self.limiter = limiter
        self.address_limit = address_limit
        self.token_limit = token_limit
        self.limiter_errors = limiter_errors
        self._last_failopen_log = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        served, params = self.match(scope)
        rule = PUBLIC  # an unknown path: the router's 404, rate-limited like any request
        if served is not None:
            scope["route"] = served.route  # so that /metrics labels refused requests by route too
            rule = self.rules[served.path]
            if rule.private and self.public_only:
                await NOT_SERVED.response()(scope, receive, send)
                return
        if not rule.limited:
            await self.app(scope, receive, send)
            return
        try:
            token, refusal = await self.decide(scope, rule, params)
        except (RedisError, StoreUnavailable, StoreRefused) as exc:
            log.warning("cannot check a token: %s", exc)
            token, refusal = None, STORE_DOWN
        if refusal is not None:
            await refusal.response()(scope, receive, send)
            return
        scope.setdefault("state", {})["token"] = token
        if rule.private:
            send = _not_stored(send)
        await self.app(scope, receive, send)

    def match(self, scope: Scope) -> tuple[Served | None, Mapping[str, Any]]:
        """The route the router will pick for this path (the first that matches) and its path parameters."""
        path = _route_path(scope)
        for served in self.served:
            found = served.regex.match(path)
            if found:
                return served, served.params(found)
        return None, {}

    async def decide(self, scope: Scope, rule: Rule, params: Mapping[str, Any]) -> tuple[Token | None, Refusal | None]:
        """The request's valid token (or None) and the refusal it gets (None: let it through)."""
        header = _header(scope, b"authorization")
        token = await self.verifier.verify(bearer(header)) if header is not None else None
        refusal = None
        if header is not None and token is None:
            refusal = BAD_TOKEN
        elif rule.private and token is None:
            refusal = NO_TOKEN
        elif rule.private and token is not None:
            org = params.get(rule.org_param) if rule.org_param else None
            if not token.covers(org):
                what = f"the organisation {org!r}" if org is not None else f"this endpoint (operators only: {ALL_ORGS})"
                refusal = Refusal(403, f"this token does not cover {what}",
                                  {"WWW-Authenticate": f'{_REALM}, error="insufficient_scope"'})
        # A refusal costs one request, whatever the route: it does none of the route's work.
        # It is counted all the same, so guessing tokens is limited like any request.
        over = await self.limit(scope, token, 1 if refusal else rule.cost)
        return token, over or refusal

    async def limit(self, scope: Scope, token: Token | None, cost: int) -> Refusal | None:
        """Take the request from its bucket; a refusal when the bucket is empty."""
        if self.limiter is None:
            return None
        if token is not None:
            bucket, limit, who = token_bucket(token.token_id), self.token_limit, "token"
        else:
            client = scope.get("client")
            bucket, limit, who = address_bucket(client[0] if client else None), self.address_limit, "address"
        try:
            verdict = await self.limiter.take(bucket, limit, cost)
        except (RedisConnectionError, RedisTimeoutError, OSError, StoreUnavailable) as exc:
            # Redis is away: every endpoint that reads counters fails on its own, and the
            # dashboard's page and probes keep working. Counted, and logged now and then.
            self.limiter_errors.inc()
            now = time.monotonic()
            if now - self._last_failopen_log > _FAILOPEN_LOG_EVERY_S:
                self._last_failopen_log = now
                log.warning("rate limiter unavailable, requests pass unlimited: %s", exc)
            return None
        except (RedisError, StoreRefused) as exc:
            # A Redis that answers but refuses the bucket's write (a read-only replica, an
            # ACL without write access to hc:rl:*) is a configuration error: say so loudly.
            log.error("the rate limiter cannot use Redis (see docs/API.md, Redis permissions): %s", exc)
            return Refusal(503, "the rate limiter cannot use its Redis; the operator must fix the API's "
                                "Redis permissions", {})
        if verdict.allowed:
            return None
        return Refusal(429, f"too many requests from this {who}: at most {limit.rate:g} per second and "
                            f"{limit.burst} at once; retry in {verdict.retry_after_header} s",
                       {"Retry-After": verdict.retry_after_header})


def _route_path(scope: Scope) -> str:
    """The path the router matches: the request's, less the mount point (``root_path``) if any."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root + "/") else path


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _not_stored(send: Send) -> Send:
    """Private answers must not be kept by a shared cache (a CDN, a proxy) or the browser."""
    async def send_private(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), (b"cache-control", b"private, no-store")]
        await send(message)
    return send_private


def served_routes(routes: Sequence[BaseRoute]) -> list[Served]:
    """Every route the app serves, in the order the router tries them (included routers' too)."""
    # Recent FastAPI keeps included routers whole (their routes are not copied into the
    # app's list) and walks them with iter_route_contexts; older versions have a flat list.
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    found = []
    for item in walk(routes) if walk else routes:
        route = getattr(item, "original_route", item)
        found.append(Served.of(route, str(getattr(item, "path", ""))))
    return found


def classify(paths: Sequence[str], complete: bool = False) -> dict[str, Rule]:
    """The rule of each served path; a ConfigError naming every path the table misses.

    ``complete``: every route is added by now, so a table line without one is an error too.
    """
    missing = sorted(set(paths) - set(ROUTES))
    stale = sorted(set(ROUTES) - set(paths)) if complete else []
    if missing or stale:
        raise ConfigError("stream/api/access.py ROUTES must classify every route as public or private: "
                          f"unclassified {missing}, classified but not served {stale}")
    return {path: ROUTES[path] for path in paths}


def install_access(app: FastAPI, settings: AccessSettings, counters: ClientSource) -> None:
    """Put the access layer in front of ``app``, whose routes must all be added by now.

    ``counters`` gives the counters' Redis client; tokens and buckets live there too
    unless ``settings.access_redis_url`` names another Redis (or cluster). With
    ``settings.public_only`` the private routes answer 404 like unknown paths and are left
    out of the OpenAPI document.
    """
    app.include_router(whoami_router(settings))
    rules = classify([s.path for s in served_routes(app.router.routes)])  # fail now rather than at start-up
    access_client = _access_client(app, settings, counters)
    store = TokenStore(access_client)
    app.state.tokens = store
    app.add_middleware(
        AccessLayer, routes=app.router.routes, public_only=settings.public_only,
        verifier=TokenVerifier(store, settings.token_cache_seconds),
        limiter=RateLimiter(access_client) if settings.rate_limit else None,
        address_limit=Limit(settings.address_rate, settings.address_burst),
        token_limit=Limit(settings.token_rate, settings.token_burst),
        limiter_errors=Counter("hubcounter_api_limiter_unavailable", "Requests let through unlimited because "
                               "the rate limiter's Redis was unreachable", registry=app.state.metrics.registry))
    install_protection(app, settings)
    document_access(app, rules, settings.public_only)


def _access_client(app: FastAPI, settings: AccessSettings, counters: ClientSource) -> ClientSource:
    """The counters' client, or one of its own for ``access_redis_url`` (closed with the app)."""
    if settings.access_redis_url is None:
        return counters
    own = LazyClient(RedisConfig(settings.access_redis_url))
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(served: Any) -> AsyncIterator[Any]:
        try:
            async with inner(served) as state:
                yield state
        finally:
            await own.aclose()

    app.router.lifespan_context = lifespan
    return own
