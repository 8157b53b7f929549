"""Reading rule sources: the shipped Hub facts and an operator's own rules file.

Both are read into :class:`RuleSpec` records (library name, language, rule as written,
origin); compiling them is the registry's job. Shape problems are reported here, naming
the file and the library.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from stream.errors import ConfigError, RuleError

SHIPPED_ORIGIN = "shipped rules"
_DATA_FILE = "hub-model-libraries.json"


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One library's rule as written. ``rule`` is None when the library sets none."""

    library: str
    language: Literal["query", "filter"]
    rule: Any
    origin: str


@dataclass(frozen=True, slots=True)
class ShippedData:
    """The shipped facts, checked for shape but not compiled."""

    libraries: dict[str, RuleSpec]
    default_query_files: tuple[str, ...]
    always_counted_query: str
    special_filters: dict[str, RuleSpec]
    historical_examples: dict[str, Any]
    about: str


def read_shipped_json() -> dict[str, Any]:
    """The raw shipped data file, read from the installed package."""
    text = resources.files("stream.rules").joinpath("data").joinpath(_DATA_FILE).read_text("utf-8")
    data = json.loads(text)
    if not isinstance(data, dict):
        raise RuleError(f"{SHIPPED_ORIGIN}: the data file is not a JSON object")
    return data


def load_shipped(data: dict[str, Any] | None = None) -> ShippedData:
    """Read and shape-check the shipped rules data (``data``: a copy of that file's
    content, as a rules version recorded it; default: the installed file)."""
    data = read_shipped_json() if data is None else data

    def need(key: str, kind: type) -> Any:
        value = data.get(key)
        if not isinstance(value, kind):
            raise RuleError(f"{SHIPPED_ORIGIN}: {key!r} is missing or not a {kind.__name__}")
        return value

    libraries: dict[str, RuleSpec] = {}
    for name, entry in need("libraries", dict).items():
        if not isinstance(entry, dict) or "countDownloads" not in entry:
            raise RuleError(f"{SHIPPED_ORIGIN}: entry has no 'countDownloads'", library=name)
        query = entry["countDownloads"]
        if query is not None and not isinstance(query, str):
            raise RuleError(f"{SHIPPED_ORIGIN}: countDownloads is not a string", library=name)
        libraries[name] = RuleSpec(name, "query", query, SHIPPED_ORIGIN)
    files = need("default_query_files", list)
    if not files or not all(isinstance(f, str) and f for f in files):
        raise RuleError(f"{SHIPPED_ORIGIN}: default_query_files must list file names")
    always = need("always_counted", dict).get("query")
    if not isinstance(always, str):
        raise RuleError(f"{SHIPPED_ORIGIN}: always_counted.query is not a string")
    specials = {
        name: RuleSpec(name, "filter", spec, f"{SHIPPED_ORIGIN} (special filter)")
        for name, spec in need("special_filters", dict).items()
    }
    return ShippedData(
        libraries=libraries,
        default_query_files=tuple(files),
        always_counted_query=always,
        special_filters=specials,
        historical_examples=dict(data.get("historical_examples") or {}),
        about=str(data.get("_about", "")),
    )


def load_operator_file(path: str | os.PathLike[str]) -> dict[str, RuleSpec]:
    """Read an operator's rules file (YAML, or JSON for a ``.json`` name).

    Format: a top-level ``libraries`` mapping of library name to either
    ``{"countDownloads": "<query>"}`` (null: use the default query files) or
    ``{"filter": {<JSON bool filter>}}``; an optional ``name`` for the rules version it
    makes (see :func:`operator_name`). Keys starting with ``_`` are comments.
    Raises :class:`ConfigError` for an unreadable or unparsable file and
    :class:`RuleError` (naming the file and library) for a malformed entry.
    """
    file = Path(path)
    try:
        text = file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read operator file {str(file)!r}: {exc}") from None
    return parse_operator_rules(text, str(file), is_json(file))


def is_json(path: str | os.PathLike[str]) -> bool:
    """Whether an operator rules file is read as JSON (by its name), else YAML."""
    return Path(path).suffix.lower() == ".json"


def parse_operator_rules(text: str, where: str, json_format: bool) -> dict[str, RuleSpec]:
    """The rules of an operator file's ``text`` (see :func:`load_operator_file`); ``where``
    names the file in errors."""
    origin = f"operator file {where!r}"
    try:
        data = json.loads(text) if json_format else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot parse {origin}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping with a 'libraries' key")
    unknown = sorted(str(k) for k in data if k not in ("libraries", "name") and not str(k).startswith("_"))
    if unknown:
        raise ConfigError(f"{origin}: unknown top-level key(s) {unknown} (expected 'libraries', 'name')")
    if not isinstance(data.get("name", ""), str):
        raise ConfigError(f"{origin}: 'name' (the rules version's name) must be a string")
    libraries = data.get("libraries")
    if not isinstance(libraries, dict):
        raise ConfigError(f"{origin}: 'libraries' must be a mapping of library name to rule")
    specs: dict[str, RuleSpec] = {}
    for name, entry in libraries.items():
        if not isinstance(name, str) or not name:
            raise RuleError(f"{origin}: library names must be non-empty strings", library=name)
        keys = set(entry) if isinstance(entry, dict) else set()
        if not isinstance(entry, dict) or len(keys & {"countDownloads", "filter"}) != 1:
            raise RuleError(
                f"{origin}: expected exactly one of 'countDownloads' or 'filter'", library=name
            )
        extra = sorted(str(k) for k in keys - {"countDownloads", "filter"})
        if extra:
            raise RuleError(f"{origin}: unknown key(s) {extra}", library=name)
        if "filter" in entry:
            if not isinstance(entry["filter"], dict):
                raise RuleError(f"{origin}: 'filter' must be a mapping", library=name)
            specs[name] = RuleSpec(name, "filter", entry["filter"], origin)
        else:
            query = entry["countDownloads"]
            if query is not None and not isinstance(query, str):
                raise RuleError(f"{origin}: countDownloads must be a string or null", library=name)
            specs[name] = RuleSpec(name, "query", query, origin)
    return specs


def operator_name(text: str, json_format: bool) -> str | None:
    """The ``name`` an operator file gives its rules version, if any (a file already checked
    by :func:`parse_operator_rules`)."""
    data = json.loads(text) if json_format else yaml.safe_load(text)
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else None
