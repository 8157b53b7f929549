"""Settings: frozen objects, the only place that reads the environment (the worker's, the API's access layer)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stream.errors import ConfigError
from stream.kafka import KafkaConnection, SaslMechanism, SecurityProtocol


class Settings(BaseSettings):
    """Everything the worker needs, from the environment or from CLI options.

    Environment names are those an operator sets (``KAFKA_BOOTSTRAP``, ``REDIS_URL``,
    ``HUBCOUNTER_*``); keyword arguments use the field names and win over the environment.
    """

    # Errors never echo the input: it may hold the SASL password.
    model_config = SettingsConfigDict(frozen=True, populate_by_name=True, extra="forbid", hide_input_in_errors=True)

    kafka_bootstrap: str = Field("127.0.0.1:9092", validation_alias="KAFKA_BOOTSTRAP",
                                 description="Kafka bootstrap servers, host:port[,host:port...]")
    kafka_security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", validation_alias="KAFKA_SECURITY_PROTOCOL",
        description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    kafka_sasl_mechanism: SaslMechanism = Field("PLAIN", validation_alias="KAFKA_SASL_MECHANISM",
                                                description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
    kafka_sasl_username: str | None = Field(None, validation_alias="KAFKA_SASL_USERNAME",
                                            description="SASL user name")
    kafka_sasl_password: SecretStr | None = Field(None, validation_alias="KAFKA_SASL_PASSWORD",
                                                  description="SASL password (never logged)")
    kafka_sasl_password_file: str | None = Field(None, validation_alias="KAFKA_SASL_PASSWORD_FILE",
                                                 description="File holding the SASL password (instead of the password)")
    kafka_ssl_cafile: str | None = Field(None, validation_alias="KAFKA_SSL_CAFILE",
                                         description="PEM file of the CA that signed the brokers' certificates "
                                                     "(default: the system's CAs)")
    kafka_ssl_certfile: str | None = Field(None, validation_alias="KAFKA_SSL_CERTFILE",
                                           description="PEM client certificate, for brokers that ask for one")
    kafka_ssl_keyfile: str | None = Field(None, validation_alias="KAFKA_SSL_KEYFILE",
                                          description="PEM private key of the client certificate")
    kafka_idempotence: bool = Field(True, validation_alias="KAFKA_IDEMPOTENCE",
                                    description="Idempotent producers (acks=all, written once across retries); "
                                                "off only for brokers that cannot serve it (Tansu)")
    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias="REDIS_URL",
                           description="Redis holding the counters: redis[s]://[user:password@]host:port/db, "
                                       "or any node of a Redis Cluster")
    redis_cluster: Literal["auto", "true", "false"] = Field(
        "auto", validation_alias="HUBCOUNTER_REDIS_CLUSTER",
        description="Whether REDIS_URL names a Redis Cluster node: auto asks it (INFO cluster, else READONLY), "
                    "true or false say so")
    redis_min_replicas: int = Field(
        0, ge=0, le=16, validation_alias="HUBCOUNTER_REDIS_MIN_REPLICAS",
        description="After applying a batch, wait until this many replicas of every master written to hold it "
                    "(WAIT), before committing; 0: do not wait")
    redis_wait_ms: int = Field(1000, ge=1, le=60_000, validation_alias="HUBCOUNTER_REDIS_WAIT_MS",
                               description="How long to wait for those replicas per batch")
    group: str = Field("hubcounter", validation_alias="HUBCOUNTER_GROUP", description="Consumer group")
    events_topic: str = Field("cdn-requests", validation_alias="HUBCOUNTER_EVENTS_TOPIC",
                              description="Topic of CDN file-request events")
    metadata_topic: str = Field("repo-metadata", validation_alias="HUBCOUNTER_METADATA_TOPIC",
                                description="Compacted topic of repo metadata (library names)")
    dlq_topic: str = Field("cdn-requests-dlq", validation_alias="HUBCOUNTER_DLQ_TOPIC",
                           description="Dead-letter topic for rejected events")
    batch_size: int = Field(20_000, ge=1, le=1_000_000, validation_alias="HUBCOUNTER_BATCH_SIZE",
                            description="Most events fetched and applied per batch")
    lateness_days: float = Field(7.0, gt=0, le=365, validation_alias="HUBCOUNTER_LATENESS_DAYS",
                                 description="Events older than this (vs. the wall clock) are not counted")
    fetch_bytes: int = Field(16 * 1024 * 1024, ge=1024 * 1024, le=256 * 1024 * 1024,
                             validation_alias="HUBCOUNTER_FETCH_BYTES",
                             description="Most event bytes one fetch brings, an eighth of it per partition (the "
                                         "worker holds up to about two fetches: its largest memory use)")
    max_message_bytes: int = Field(64 * 1024, ge=256, validation_alias="HUBCOUNTER_MAX_MESSAGE_BYTES",
                                   description="Larger messages are dead-lettered")
    dlq_keep_bytes: int = Field(64 * 1024, ge=0, le=256 * 1024, validation_alias="HUBCOUNTER_DLQ_KEEP_BYTES",
                                description="Most bytes of a rejected event a dead letter keeps (it always "
                                            "carries the event's length and SHA-256)")
    stall_seconds: float = Field(60.0, gt=0, validation_alias="HUBCOUNTER_STALL_SECONDS",
                                 description="/healthz fails after this long without progress while records "
                                             "wait (outside a Redis or Kafka outage)")
    web_host: str = Field("127.0.0.1", validation_alias="HUBCOUNTER_WEB_HOST",
                          description="Address of /metrics, /healthz, /readyz")
    web_port: int = Field(6066, ge=0, le=65535, validation_alias="HUBCOUNTER_WEB_PORT",
                          description="Port of /metrics, /healthz, /readyz")
    session_timeout_ms: int = Field(10_000, ge=1000, validation_alias="HUBCOUNTER_SESSION_TIMEOUT_MS",
                                    description="Consumer-group session timeout: how fast a dead worker is replaced")
    check_crcs: bool = Field(False, validation_alias="HUBCOUNTER_CHECK_CRCS",
                             description="Verify the CRC of every fetched record batch (costs the worker ~6% of its "
                                         "CPU; off by default, as in librdkafka)")
    shards: int = Field(64, ge=1, le=16384, validation_alias="HUBCOUNTER_SHARDS",
                        description="Counter shards in Redis (fixed once counting has started)")
    rules_file: str | None = Field(None, validation_alias="HUBCOUNTER_RULES",
                                   description="Operator rules file (YAML or JSON) on top of the shipped rules")
    rules_name: str | None = Field(None, validation_alias="HUBCOUNTER_RULES_NAME",
                                   description="A name for the rules version in effect (recorded with its hash)")
    analytics: bool = Field(True, validation_alias="HUBCOUNTER_ANALYTICS",
                            description="Record what downloads say (class, client, country, file, unique "
                                        "downloaders) and which candidates did not count")
    classes_file: str | None = Field(None, validation_alias="HUBCOUNTER_CLASSES",
                                     description="Traffic classes and clients file (YAML or JSON) that "
                                                 "replaces the shipped one")
    top_values: int = Field(50, ge=1, le=1000, validation_alias="HUBCOUNTER_TOP_VALUES",
                            description="Values of each breakdown kept per repo and day; the rest are "
                                        "summed as other once the day is closed")

    @field_validator("kafka_bootstrap")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"expected redis://host:port/db, got {value!r}")
        return value

    @model_validator(mode="after")
    def _check_kafka(self) -> Settings:
        if self.kafka_sasl_password is not None and self.kafka_sasl_password_file is not None:
            raise ValueError("give KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both")
        try:
            self.kafka  # noqa: B018 - builds (and so checks) the connection settings
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def kafka(self) -> KafkaConnection:
        """How every Kafka client of the worker connects (the password file is read here)."""
        password = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
        if self.kafka_sasl_password_file is not None:
            try:
                password = Path(self.kafka_sasl_password_file).read_text().rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(f"cannot read KAFKA_SASL_PASSWORD_FILE: {exc}") from None
        return KafkaConnection(
            self.kafka_bootstrap, self.kafka_security_protocol, self.kafka_sasl_mechanism,
            self.kafka_sasl_username, password, self.kafka_ssl_cafile, self.kafka_ssl_certfile,
            self.kafka_ssl_keyfile, self.kafka_idempotence)

    @property
    def lateness(self) -> timedelta:
        return timedelta(days=self.lateness_days)


class AccessSettings(BaseSettings):
    """The read API's access layer: who may read what, how much, and from where.

    Environment names are ``HUBCOUNTER_API_<FIELD>`` (``HUBCOUNTER_API_PUBLIC_ONLY=true``);
    ``hubcounter api`` reads them once and every uvicorn process reads the same ones.
    :meth:`defaults` gives them without looking at the environment (tests, code).
    """

    model_config = SettingsConfigDict(frozen=True, extra="forbid", env_prefix="HUBCOUNTER_API_")

    public_only: bool = Field(False, description="Serve only the public endpoints (private ones are not mounted)")
    rate_limit: bool = Field(True, description="Enforce the request rate limits below")
    address_rate: float = Field(20.0, gt=0, description="Requests per second a client address may sustain")
    address_burst: int = Field(100, ge=1, description="Requests a client address may make at once")
    token_rate: float = Field(100.0, gt=0, description="Requests per second one token may sustain")
    token_burst: int = Field(500, ge=1, description="Requests one token may make at once")
    token_cache_seconds: float = Field(5.0, ge=0, le=30, description="How long a process trusts what it read "
                                       "about a token: a revoked token stops working within this time")
    request_timeout_seconds: float = Field(15.0, gt=0, le=600, description="Longest a request may take, "
                                           "streamed exports included")
    cors_origins: str = Field("", description="Comma-separated origins allowed to call the API from a browser; "
                              "empty: CORS off")
    access_redis_url: str | None = Field(None, description="Redis of the tokens and rate limits when it is not "
                                         "the counters' Redis (e.g. the API reads a replica)")

    @classmethod
    def defaults(cls, **changes: Any) -> AccessSettings:
        """The defaults with ``changes``, whatever the environment says (for code and tests; not validated)."""
        return cls.model_construct(**changes)

    @property
    def origins(self) -> tuple[str, ...]:
        """The CORS origins, without blanks."""
        return tuple(o.strip() for o in self.cors_origins.split(",") if o.strip())

    @field_validator("access_redis_url")
    @classmethod
    def _check_access_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"expected redis://host:port/db, got {value!r}")
        return value
