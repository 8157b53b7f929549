"""The Redis client, chosen once at the edge: one Redis or a Redis Cluster.

``REDIS_URL`` may name a standalone Redis or any node of a cluster. With
``HUBCOUNTER_REDIS_CLUSTER=auto`` (the default) :func:`connect` asks the node
(``INFO cluster``, or ``READONLY`` for a user not allowed ``INFO``) and builds redis-py's
``Redis`` or ``RedisCluster`` accordingly; ``true``/``false`` skip the question. Both clients
take ``rediss://`` (TLS) and ``user:password@`` (ACL) URLs and offer the same commands
and non-transactional pipelines, so nothing past this module asks which one it got.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.cluster import LoadBalancingStrategy
from redis.exceptions import (
    AskError,
    AuthenticationError,
    AuthorizationError,
    ClusterError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from stream.errors import ConfigError, StoreRefused, StoreUnavailable
from stream.store import packing

ClusterMode: TypeAlias = Literal["auto", "true", "false"]
RedisClient: TypeAlias = aioredis.Redis | RedisCluster
# Where a part that may start before Redis is up gets its client (a LazyClient, say).
ClientSource: TypeAlias = Callable[[], Awaitable[RedisClient]]
# A command's arguments, optionally ending with its routing options (a dict).
Command: TypeAlias = tuple[Any, ...]

# What a retry can cure: a node down or failing over, a cluster re-forming (no node
# reachable, slots uncovered, CLUSTERDOWN), slots moving (TRYAGAIN, ASK or MOVED left
# over once the client's own redirects ran out), a replica not yet promoted (READONLY)
# or a Redis still loading its data.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError, RedisTimeoutError, ClusterError, RedisClusterException, TryAgainError, AskError,
    ReadOnlyError, OSError,
)
# Redis answers but refuses, for a reason an operator must fix: credentials, an ACL,
# memory, persistence failing (MISCONF), too few replicas for min-replicas-to-write.
_REFUSED = (AuthenticationError, AuthorizationError, OutOfMemoryError, NoPermissionError)
_REFUSED_PREFIXES = ("MISCONF", "NOREPLICAS")


@contextlib.contextmanager
def store_errors(where: str = "Redis") -> Iterator[None]:
    """Turn Redis client errors into the project's: StoreUnavailable when a retry can cure
    them, StoreRefused when an operator must act. Anything else is a bug and propagates."""
    try:
        yield
    except (StoreUnavailable, StoreRefused):
        raise
    except _REFUSED as exc:  # before TRANSIENT_ERRORS: credential errors are connection errors too
        raise StoreRefused(f"{where} refuses: {exc}") from exc
    except TRANSIENT_ERRORS as exc:
        raise StoreUnavailable(f"{where} unavailable: {exc}") from exc
    except ResponseError as exc:
        if str(exc).startswith(_REFUSED_PREFIXES):
            raise StoreRefused(f"{where} refuses: {exc}") from exc
        raise


@dataclass(frozen=True, slots=True)
class RedisConfig:
    """Where the counters live and how to reach them."""

    url: str
    cluster: ClusterMode = "auto"
    # Cluster only: spread reads over each master's replicas (they lag the master slightly).
    read_from_replicas: bool = False
    socket_timeout: float = 5.0
    connect_timeout: float = 2.0
    # Connections per node; a standalone client waits for a free one, a cluster client
    # fails fast (redis-py's behaviour), so size it for the peak of concurrent requests.
    max_connections: int | None = None


async def is_cluster(config: RedisConfig) -> bool:
    """Whether ``config.url`` names a node of a Redis Cluster (``cluster_enabled:1``)."""
    if config.cluster != "auto":
        return config.cluster == "true"
    return await _cluster_enabled(config)


async def _cluster_enabled(config: RedisConfig) -> bool:
    probe = aioredis.Redis.from_url(config.url, socket_timeout=config.socket_timeout,
                                    socket_connect_timeout=config.connect_timeout)
    try:
        with store_errors(f"Redis at {_safe(config.url)}"):
            try:
                return bool(int((await probe.info("cluster")).get("cluster_enabled", 0)))
            except NoPermissionError:
                pass
            # A user that may not run INFO may run READONLY (category @connection): a
            # cluster node accepts it, a single Redis says it has no cluster support.
            try:
                await probe.execute_command("READONLY")
                return True
            except NoPermissionError as exc:
                raise ConfigError(
                    f"cannot tell whether {_safe(config.url)} is a cluster node: this user may run neither INFO "
                    "nor READONLY; set HUBCOUNTER_REDIS_CLUSTER=true or false") from exc
            except ResponseError as exc:
                if "cluster support disabled" in str(exc):
                    return False
                raise
    finally:
        await probe.aclose()


async def connect(config: RedisConfig) -> RedisClient:
    """A client for ``config``: a ``RedisCluster`` when the URL names a cluster node, else a ``Redis``.

    Raises StoreUnavailable while Redis cannot be reached (a caller may retry),
    StoreRefused when it refuses this user, ConfigError when the settings do not fit it.
    """
    packing.install()
    if await is_cluster(config):
        return await _cluster(config)
    # No retries inside the client: redis-py retries a timeout 3 times by default, which
    # makes a frozen Redis look alive for 20 s; the callers' own retry loops (with their
    # outage reporting) are the ones to wait it out.
    options = {"socket_timeout": config.socket_timeout, "socket_connect_timeout": config.connect_timeout,
               "retry": Retry(NoBackoff(), 0)}
    if config.max_connections:
        pool = aioredis.BlockingConnectionPool.from_url(
            config.url, max_connections=config.max_connections, timeout=config.socket_timeout, **options)
        return aioredis.Redis.from_pool(pool)  # the client owns the pool and closes it
    return aioredis.Redis.from_url(config.url, **options)


async def _cluster(config: RedisConfig) -> RedisCluster:
    kwargs = {"max_connections": config.max_connections} if config.max_connections else {}
    strategy = LoadBalancingStrategy.ROUND_ROBIN_REPLICAS if config.read_from_replicas else None
    cluster = RedisCluster.from_url(config.url, socket_timeout=config.socket_timeout,
                                    socket_connect_timeout=config.connect_timeout,
                                    load_balancing_strategy=strategy, **kwargs)
    try:
        with store_errors(f"Redis Cluster at {_safe(config.url)}"):
            await cluster.initialize()
    except StoreUnavailable:
        await cluster.aclose()
        # Told it is a cluster: a node that is not says so to INFO (when this user may ask).
        if config.cluster == "true" and not await _cluster_enabled(config):
            raise ConfigError(f"HUBCOUNTER_REDIS_CLUSTER=true but {_safe(config.url)} is not a cluster node; "
                              "set it to auto or false") from None
        raise
    except StoreRefused:
        await cluster.aclose()
        raise
    return cluster


class LazyClient:
    """The client of a config, connected on first use and kept (a process may start while
    Redis is away, and say so, rather than fail)."""

    def __init__(self, config: RedisConfig):
        self.config = config
        self._client: RedisClient | None = None
        self._connecting = asyncio.Lock()

    async def __call__(self) -> RedisClient:
        """The client (StoreUnavailable while Redis cannot be reached)."""
        if self._client is None:
            async with self._connecting:
                if self._client is None:
                    self._client = await connect(self.config)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def replica_waits(client: RedisClient, keys: Iterable[str], replicas: int, timeout_ms: int) -> list[Command]:
    """``WAIT`` commands that, sent after the writes to ``keys`` in the same pipeline, make
    each master holding them confirm that ``replicas`` replicas have those writes.

    ``WAIT`` covers the writes sent before it on its connection, and a pipeline uses one
    connection per node: so one ``WAIT`` per master, routed to it (on one Redis, one). A
    write redirected during resharding goes on another connection, which that ``WAIT``
    does not cover.
    """
    if isinstance(client, RedisCluster):
        masters = {node.name: node for node in (client.get_node_from_key(key) for key in keys)}
        return [("WAIT", replicas, timeout_ms, {"target_nodes": node}) for node in masters.values()]
    return [("WAIT", replicas, timeout_ms)]


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}{sep}{user}{':***' if ':' in credentials else ''}@{host}"
