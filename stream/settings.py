"""Worker settings: one frozen object, the only place that reads the environment."""

from __future__ import annotations

from datetime import timedelta

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Everything the worker needs, from the environment or from CLI options.

    Environment names are those an operator sets (``KAFKA_BOOTSTRAP``, ``REDIS_URL``,
    ``HUBCOUNTER_*``); keyword arguments use the field names and win over the environment.
    """

    model_config = SettingsConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    kafka_bootstrap: str = Field("127.0.0.1:9092", validation_alias=_env("kafka_bootstrap", "KAFKA_BOOTSTRAP"))
    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias=_env("redis_url", "REDIS_URL"))
    group: str = Field("hubcounter", validation_alias=_env("group", "HUBCOUNTER_GROUP"))
    events_topic: str = Field("cdn-requests", validation_alias=_env("events_topic", "HUBCOUNTER_EVENTS_TOPIC"))
    metadata_topic: str = Field("repo-metadata", validation_alias=_env("metadata_topic", "HUBCOUNTER_METADATA_TOPIC"))
    dlq_topic: str = Field("cdn-requests-dlq", validation_alias=_env("dlq_topic", "HUBCOUNTER_DLQ_TOPIC"))
    batch_size: int = Field(20_000, ge=1, le=1_000_000, validation_alias=_env("batch_size", "HUBCOUNTER_BATCH_SIZE"))
    lateness_days: float = Field(7.0, gt=0, le=365, validation_alias=_env("lateness_days", "HUBCOUNTER_LATENESS_DAYS"))
    max_message_bytes: int = Field(64 * 1024, ge=256, validation_alias=_env("max_message_bytes", "HUBCOUNTER_MAX_MESSAGE_BYTES"))
    web_host: str = Field("127.0.0.1", validation_alias=_env("web_host", "HUBCOUNTER_WEB_HOST"))
    web_port: int = Field(6066, ge=0, le=65535, validation_alias=_env("web_port", "HUBCOUNTER_WEB_PORT"))
    session_timeout_ms: int = Field(10_000, ge=1000, validation_alias=_env("session_timeout_ms", "HUBCOUNTER_SESSION_TIMEOUT_MS"))
    shards: int = Field(64, ge=1, le=16384, validation_alias=_env("shards", "HUBCOUNTER_SHARDS"))
    rules_file: str | None = Field(None, validation_alias=_env("rules_file", "HUBCOUNTER_RULES"))

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

    @property
    def lateness(self) -> timedelta:
        return timedelta(days=self.lateness_days)
