"""How every Kafka client of hubcounter connects: bootstrap servers, TLS and SASL.

The worker's events consumer and dead-letter producer, the metadata feed, ``topics``,
``simulate``, the embedded brokers' readiness checks, the tests and the benchmarks all
build their aiokafka clients from one :class:`KafkaConnection` (the worker's comes from
:class:`stream.settings.Settings`), so a secured cluster is configured once, the same way
for all of them.

:func:`preflight` fails fast on what no retry can fix (an unknown CA, a wrong password, a
principal without ACLs) with one line that names it; an unreachable broker passes, since
the clients wait for it anyway.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.coordination import FindCoordinatorRequest
from aiokafka.protocol.metadata import MetadataRequest

from stream.errors import ConfigError, KafkaAccessError

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
SECURITY_PROTOCOLS: tuple[str, ...] = get_args(SecurityProtocol)
SASL_MECHANISMS: tuple[str, ...] = get_args(SaslMechanism)

_PREFLIGHT_TIMEOUT_MS = 10_000


@dataclass(frozen=True, slots=True)
class KafkaConnection:
    """Where the brokers are and how to talk to them; builds the aiokafka client options.

    ``ssl_cafile`` None means the system's CAs (a managed Kafka with a public CA);
    ``ssl_certfile``/``ssl_keyfile`` are a client certificate for brokers that ask for one.
    ``idempotence`` makes producers idempotent (``acks=all``; a send retried after a
    leader change is written once); Tansu, the demo's broker, cannot serve it.
    """

    bootstrap: str
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "PLAIN"
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    idempotence: bool = True

    def __post_init__(self) -> None:
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise ConfigError(f"KAFKA_SECURITY_PROTOCOL must be one of {', '.join(SECURITY_PROTOCOLS)}, "
                              f"got {self.security_protocol!r}")
        if self.sasl_mechanism not in SASL_MECHANISMS:
            raise ConfigError(f"KAFKA_SASL_MECHANISM must be one of {', '.join(SASL_MECHANISMS)}, "
                              f"got {self.sasl_mechanism!r}")
        if self.uses_sasl and not (self.sasl_username and self.sasl_password):
            raise ConfigError(f"{self.security_protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD "
                              "(or KAFKA_SASL_PASSWORD_FILE)")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ConfigError("a client certificate needs both KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    def servers(self) -> list[tuple[str, int]]:
        """The bootstrap servers as (host, port)."""
        out = []
        for server in self.bootstrap.split(","):
            host, _, port = server.strip().rpartition(":")
            out.append((host.strip("[]"), int(port)))
        return out

    def describe(self) -> str:
        """Where and how this connects, for logs and errors (never the password)."""
        how = self.security_protocol
        if self.uses_sasl:
            how += f", {self.sasl_mechanism} as {self.sasl_username}"
        return f"{self.bootstrap} ({how})"

    def ssl_context(self) -> ssl.SSLContext:
        """A TLS context that verifies the brokers (and presents the client certificate, if any)."""
        try:
            context = ssl.create_default_context(cafile=self.ssl_cafile)
            if self.ssl_certfile is not None:
                context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        except (OSError, ssl.SSLError) as exc:
            files = ", ".join(f for f in (self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile) if f)
            raise ConfigError(f"cannot load the Kafka TLS files ({files or 'system CAs'}): {exc}") from exc
        return context

    def security_options(self) -> dict[str, Any]:
        """The aiokafka keyword arguments of TLS and SASL (empty for PLAINTEXT)."""
        options: dict[str, Any] = {}
        if self.security_protocol != "PLAINTEXT":
            options["security_protocol"] = self.security_protocol
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            options.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                           sasl_plain_password=self.sasl_password)
        return options

    def options(self) -> dict[str, Any]:
        """Every aiokafka keyword argument of the connection, bootstrap servers included."""
        return {"bootstrap_servers": self.bootstrap, **self.security_options()}


def consumer(connection: KafkaConnection, *topics: str, **options: Any) -> AIOKafkaConsumer:
    """An (unstarted) consumer on ``connection``; ``options`` are aiokafka's."""
    return AIOKafkaConsumer(*topics, **connection.options(), **options)


def producer(connection: KafkaConnection, **options: Any) -> AIOKafkaProducer:
    """An (unstarted) producer on ``connection``, idempotent if it says so; ``options`` are aiokafka's."""
    options.setdefault("enable_idempotence", connection.idempotence)
    return AIOKafkaProducer(**connection.options(), **options)


def admin(connection: KafkaConnection, **options: Any) -> AIOKafkaAdminClient:
    """An (unstarted) admin client on ``connection``."""
    return AIOKafkaAdminClient(**connection.options(), **options)


async def preflight(connection: KafkaConnection, topics: Sequence[str] = (), group: str | None = None) -> None:
    """Raise :class:`KafkaAccessError` if the brokers refuse this client for good.

    Connects as the clients will (TLS, SASL), then asks for the metadata of ``topics`` and
    the coordinator of ``group``: an authorization error on either means missing ACLs.
    Topics that do not exist yet pass (the worker waits for them); so does a broker that
    cannot be reached at all.
    """
    for host, port in connection.servers():
        try:
            conn = await create_conn(host, port, request_timeout_ms=_PREFLIGHT_TIMEOUT_MS,
                                     **_conn_options(connection))
        except ssl.SSLCertVerificationError as exc:
            where = connection.ssl_cafile or "the system's CAs"
            raise KafkaAccessError(f"TLS: the certificate of Kafka broker {host}:{port} does not verify against "
                                   f"{where} ({exc.verify_message}); check KAFKA_SSL_CAFILE") from None
        except ssl.SSLError as exc:
            raise KafkaAccessError(f"TLS handshake with Kafka broker {host}:{port} failed ({exc.reason}); is it "
                                   f"a {connection.security_protocol} listener?") from None
        except (SaslAuthenticationFailed, UnsupportedSaslMechanismError) as exc:
            raise KafkaAccessError(f"SASL {connection.sasl_mechanism} authentication as {connection.sasl_username!r} "
                                   f"refused by Kafka broker {host}:{port} ({_first_line(exc)}); check "
                                   "KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD and KAFKA_SASL_MECHANISM") from None
        except (OSError, KafkaError, TimeoutError):
            continue  # not reachable now: the next server, or the clients' own retries
        try:
            await _check_authorized(conn, connection, topics, group)
        finally:
            conn.close()
        return


async def _check_authorized(conn: Any, connection: KafkaConnection, topics: Sequence[str], group: str | None) -> None:
    who = f"user {connection.sasl_username!r}" if connection.uses_sasl else "this client"
    if topics:
        reply = await conn.send(MetadataRequest(list(topics), allow_auto_topic_creation=False))
        denied = sorted(t[1] for t in reply.topics if t[0] == TopicAuthorizationFailedError.errno)
        if denied:
            raise KafkaAccessError(f"Kafka denies {who} access to topic(s) {', '.join(denied)} "
                                   "(TOPIC_AUTHORIZATION_FAILED); grant its ACLs (Describe, Read/Write)")
    if group is not None:
        reply = await conn.send(FindCoordinatorRequest(group, 0))
        if reply.error_code == GroupAuthorizationFailedError.errno:
            raise KafkaAccessError(f"Kafka denies {who} access to consumer group {group!r} "
                                   "(GROUP_AUTHORIZATION_FAILED); grant it Read on the group")


def refusal(exc: BaseException, connection: KafkaConnection | None = None) -> KafkaAccessError | None:
    """``exc`` as a :class:`KafkaAccessError` if it is Kafka refusing access (ACLs, credentials)."""
    if isinstance(exc, KafkaAccessError):
        return exc
    if not isinstance(exc, _REFUSALS):
        return None
    who = f"user {connection.sasl_username!r}" if connection is not None and connection.uses_sasl else "this client"
    where = f" at {connection.bootstrap}" if connection is not None else ""
    return KafkaAccessError(f"Kafka refuses {who}{where}: {_first_line(exc)}")


def raise_if_refused(exc: BaseException, connection: KafkaConnection) -> None:
    """Raise :class:`KafkaAccessError` in place of ``exc`` if it is a refusal (ACLs, credentials)."""
    refused = refusal(exc, connection)
    if refused is not None:
        raise refused from None


_REFUSALS = (TopicAuthorizationFailedError, GroupAuthorizationFailedError, ClusterAuthorizationFailedError,
             TransactionalIdAuthorizationFailed, SaslAuthenticationFailed)


def _conn_options(connection: KafkaConnection) -> dict[str, Any]:
    options = connection.security_options()
    options.setdefault("security_protocol", "PLAINTEXT")
    return options


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
