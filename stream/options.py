"""Command-line options built from :class:`~stream.settings.Settings`: the CLI's edge.

Every setting is also an option of the same name (``--kafka-sasl-username`` for
``KAFKA_SASL_USERNAME``); a given option wins over the environment.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterable
from typing import Any, Literal, get_args, get_origin

import click
from pydantic import ValidationError

from stream.kafka import KafkaConnection
from stream.names import RULE as NAME_RULE
from stream.names import valid_repo
from stream.settings import Settings

REPO_TYPES = ("model", "dataset", "space")
# The Kafka connection's settings other than the bootstrap servers: TLS and SASL.
KAFKA_SECURITY = tuple(n for n in Settings.model_fields if n.startswith("kafka_") and n != "kafka_bootstrap")


def _click_type(annotation: Any) -> Any:
    if get_origin(annotation) is Literal:
        return click.Choice(get_args(annotation))
    args = [a for a in get_args(annotation) if a is not type(None)]
    base = args[0] if isinstance(annotation, types.UnionType) and args else annotation
    return {int: int, float: float, bool: click.BOOL}.get(base, str)


def _add_options(command: Callable[..., Any], names: Iterable[str]) -> Callable[..., Any]:
    for name in reversed(list(names)):
        info = Settings.model_fields[name]
        command = click.option(
            f"--{name.replace('_', '-')}", name, type=_click_type(info.annotation), default=None,
            help=f"{info.description} [env {info.validation_alias}; default {info.default}]",
        )(command)
    return command


def _settings(given: dict[str, Any]) -> Settings:
    try:
        return Settings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from exc


def settings_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add one ``--option`` per :class:`Settings` field; the command gets ``settings``."""
    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        given = {k: kwargs.pop(k) for k in list(kwargs) if k in Settings.model_fields}
        return command(settings=_settings(given), **kwargs)

    return _add_options(wrapper, Settings.model_fields)


def kafka_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--bootstrap`` and the Kafka TLS and SASL options; the command gets ``kafka``,
    a :class:`KafkaConnection` (None without ``--bootstrap``)."""
    @functools.wraps(command)
    def wrapper(bootstrap: str | None, **kwargs: Any) -> Any:
        given = {k: kwargs.pop(k) for k in KAFKA_SECURITY}
        kafka: KafkaConnection | None = None
        if bootstrap is not None:
            kafka = _settings({"kafka_bootstrap": bootstrap, **given}).kafka
        return command(kafka=kafka, **kwargs)

    wrapper = _add_options(wrapper, KAFKA_SECURITY)
    return click.option("--bootstrap", help="Kafka bootstrap servers (host:port[,host:port...]).")(wrapper)

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
