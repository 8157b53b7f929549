"""Rules versions: what a version is made of, so that any version can be compiled again.

A version (:attr:`Registry.version`) is a short hash of what decides; it says nothing of
the rules themselves. A :class:`RulesVersion` keeps what built them: the shipped data
file's content and the operator file's text, so that a recount can judge history again
with the rules that counted it (:mod:`stream.recount`), years of deployments later.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from stream.errors import ConfigError
from stream.rules.registry import Registry
from stream.rules.sources import is_json, load_shipped, operator_name, parse_operator_rules, read_shipped_json


@dataclass(frozen=True, slots=True)
class RulesVersion:
    """One version of the rules: its hash, an optional name, and what it was built from."""

    version: str
    name: str | None
    shipped: dict[str, Any]
    operator_text: str | None = None
    operator_file: str | None = None
    recorded: str = ""  # ISO time it was recorded

    @property
    def label(self) -> str:
        """``name (version)``, or the version alone."""
        return f"{self.name} ({self.version})" if self.name else self.version

    def registry(self) -> Registry:
        """The compiled rules of this version."""
        shipped = load_shipped(self.shipped)
        if self.operator_text is None:
            return Registry(shipped)
        where = self.operator_file or "recorded rules"
        return Registry(shipped, parse_operator_rules(self.operator_text, where, is_json(where)),
                        operator_file=self.operator_file)

    def to_json(self) -> bytes:
        return orjson.dumps({"version": self.version, "name": self.name, "shipped": self.shipped,
                             "operator_text": self.operator_text, "operator_file": self.operator_file,
                             "recorded": self.recorded})

    @classmethod
    def from_json(cls, raw: bytes | str) -> RulesVersion:
        data = orjson.loads(raw)
        return cls(data["version"], data.get("name"), data["shipped"], data.get("operator_text"),
                   data.get("operator_file"), data.get("recorded", ""))


def load_rules(path: str | os.PathLike[str] | None, name: str | None = None) -> tuple[Registry, RulesVersion]:
    """Compile the shipped rules plus the operator file at ``path``, and describe the version.

    The version's name is the file's ``name`` when it gives one (so a file reloaded live
    names its own version), else ``name`` (``--rules-name``).
    The file is read once, so the compiled rules and the recorded text are the same.
    Raises RuleError or ConfigError as :func:`~stream.rules.registry.load_registry` does.
    """
    text = None
    if path is not None:
        try:
            text = Path(path).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read operator file {os.fspath(path)!r}: {exc}") from None
    draft = RulesVersion("", name, read_shipped_json(), text, None if path is None else os.fspath(path),
                         datetime.now(UTC).isoformat(timespec="seconds"))
    registry = draft.registry()
    if text is not None and path is not None:
        name = operator_name(text, is_json(path)) or name  # the file names the version it makes
    return registry, RulesVersion(registry.version, name, draft.shipped, text, draft.operator_file, draft.recorded)
