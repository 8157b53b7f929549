"""The reference's own download rules: the Hub's semantics (docs/RULES.md), read plainly.

Shares no code with ``stream.rules``, so a bug in the worker's rule compiler shows up as a
count that differs from the reference's. A query string is parsed by luqum and its tree
walked at every decision; a JSON filter is walked as the mapping it is. Nothing is
compiled or memoised: slow, and plain on purpose.

A model request counts when the path is a GGUF file (the shipped ``always_counted``
query), or when the library's rule matches: an operator file's rule, else the shipped
special filter, else the shipped ``countDownloads`` query; a library with none (or an
unknown library, or none at all) uses the default query files at the repo root.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from luqum import tree
from luqum.parser import parser as luqum_parser

FIELDS = ("path", "path_prefix", "path_extension", "path_filename")


class RuleBookError(ValueError):
    """A rule the reference cannot read (the worker's registry refuses it too)."""


@dataclass(frozen=True, slots=True)
class PathFields:
    """The four fields a rule tests; None where the field is absent."""

    path: str
    path_prefix: str | None
    path_extension: str | None
    path_filename: str | None

    @classmethod
    def of(cls, path: str) -> PathFields:
        """Split a path relative to the repo root (see the table in docs/RULES.md)."""
        directory, slash, name = path.rpartition("/")
        prefix = directory + slash if slash else None
        stem, dot, extension = name.rpartition(".")
        if dot and stem and extension:  # a dot after the first character, text after it
            return cls(path, prefix, extension, stem)
        return cls(path, prefix, None, name if name else None)

    def get(self, field: str) -> str | None:
        return getattr(self, field)


def wildcard_matches(pattern: str, value: str) -> bool:
    """``*`` any run (slashes too), ``?`` one character, ``\\x`` a literal x; whole value."""
    regex = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            regex.append(re.escape(next(chars, "\\")))
        elif char == "*":
            regex.append(".*")
        elif char == "?":
            regex.append(".")
        else:
            regex.append(re.escape(char))
    return re.fullmatch("".join(regex), value, re.DOTALL) is not None


# --- the query string ------------------------------------------------------------------

_REFUSED_NODES = (tree.Range, tree.From, tree.To, tree.Fuzzy, tree.Proximity, tree.Boost, tree.Regex,
                  tree.Plus, tree.Prohibit)


@dataclass(frozen=True, slots=True)
class Query:
    """A ``countDownloads`` query string, kept as luqum's tree."""

    text: str
    root: tree.Item

    @classmethod
    def parse(cls, text: str) -> Query:
        if not text.strip():
            raise RuleBookError("empty query")
        try:
            root = luqum_parser.parse(text)
        except Exception as exc:  # luqum raises several kinds for bad syntax
            raise RuleBookError(f"cannot parse {text!r}: {exc}") from None
        _check_query(root, None)
        return cls(text, root)

    def matches(self, fields: PathFields) -> bool:
        return _holds(self.root, fields, None)


def _check_query(item: tree.Item, field: str | None) -> None:
    if isinstance(item, _REFUSED_NODES):
        raise RuleBookError(f"{type(item).__name__} is outside the supported syntax: {item}")
    if isinstance(item, tree.Word) and (item.value in ("&&", "||") or item.value.startswith("!")):
        raise RuleBookError(f"operator {item.value!r} is not supported")
    if isinstance(item, tree.SearchField):
        if field is not None:
            raise RuleBookError(f"field {item.name!r} inside the group of {field!r}")
        if item.name == "_exists_":
            _exists_field(item.expr)
            return
        if item.name not in FIELDS:
            raise RuleBookError(f"unknown field {item.name!r}")
        field = item.name
    elif not isinstance(item, tree.Group | tree.FieldGroup | tree.AndOperation | tree.OrOperation
                        | tree.UnknownOperation | tree.Not | tree.Word | tree.Phrase):
        raise RuleBookError(f"{type(item).__name__} is outside the supported syntax: {item}")
    for child in item.children:
        _check_query(child, field)


def _exists_field(expr: tree.Item) -> str:
    if isinstance(expr, tree.Phrase):
        name = _phrase_text(expr)
    elif isinstance(expr, tree.Word) and not any(c in expr.value for c in "*?"):
        name = expr.unescaped_value
    else:
        raise RuleBookError(f"_exists_ takes one field name, not {expr}")
    if name not in FIELDS:
        raise RuleBookError(f"unknown field {name!r} in _exists_")
    return name


def _phrase_text(phrase: tree.Phrase) -> str:
    return re.sub(r"\\(.)", r"\1", phrase.value[1:-1], flags=re.DOTALL)


def _holds(item: tree.Item, fields: PathFields, field: str | None) -> bool:
    """Whether the clause ``item`` holds for ``fields``; ``field`` is the enclosing field."""
    if isinstance(item, tree.SearchField):
        if item.name == "_exists_":
            return fields.get(_exists_field(item.expr)) is not None
        return _holds(item.expr, fields, item.name)
    if isinstance(item, tree.Group | tree.FieldGroup):
        return _holds(item.expr, fields, field)
    if isinstance(item, tree.AndOperation):
        return all(_holds(child, fields, field) for child in item.children)
    if isinstance(item, tree.OrOperation | tree.UnknownOperation):  # side by side: OR
        return any(_holds(child, fields, field) for child in item.children)
    if isinstance(item, tree.Not):
        return not _holds(item.a, fields, field)
    # A term: with a field, that field's value; without one, any of the four.
    values = [fields.get(field)] if field is not None else [fields.get(name) for name in FIELDS]
    present = [value for value in values if value is not None]
    if isinstance(item, tree.Phrase):
        return _phrase_text(item) in present
    return any(wildcard_matches(item.value, value) for value in present)


# --- the JSON bool filter --------------------------------------------------------------

_BOOL_KEYS = {"filter", "must", "should", "must_not", "minimum_should_match", "boost"}


def filter_matches(spec: Any, fields: PathFields) -> bool:
    """Whether the Elasticsearch bool filter ``spec`` (or a bare bool body) matches."""
    if isinstance(spec, dict) and spec and "bool" not in spec and set(spec) <= _BOOL_KEYS:
        return _bool(spec, fields)
    return _clause(spec, fields)


def _clause(clause: Any, fields: PathFields) -> bool:
    if not isinstance(clause, dict) or len(clause) != 1:
        raise RuleBookError(f"a clause has one key: {clause!r}")
    ((kind, body),) = clause.items()
    if kind == "bool":
        return _bool(body, fields)
    if kind == "exists":
        if not isinstance(body, dict) or body.get("field") not in FIELDS or set(body) - {"field", "boost"}:
            raise RuleBookError(f"bad exists clause {body!r}")
        return fields.get(body["field"]) is not None
    if not isinstance(body, dict):
        raise RuleBookError(f"bad {kind} clause {body!r}")
    names = [key for key in body if key != "boost"]
    if len(names) != 1 or names[0] not in FIELDS:
        raise RuleBookError(f"{kind} needs one known field: {body!r}")
    value = fields.get(names[0])
    argument = body[names[0]]
    if kind == "terms":
        if not isinstance(argument, list) or not all(isinstance(v, str) for v in argument):
            raise RuleBookError(f"terms takes a list of strings: {argument!r}")
        return value is not None and value in argument
    if kind not in _LEAF_KEYS:
        raise RuleBookError(f"unsupported clause {kind!r}")
    text, params = _leaf_argument(kind, argument)
    if kind == "regexp":
        regexp = _regexp(text, params.get("flags", "ALL"))  # checked even when the field is absent
        return value is not None and regexp.fullmatch(value) is not None
    return value is not None and _LEAVES[kind](text, value)


_LEAVES = {
    "term": lambda text, value: value == text,
    "prefix": lambda text, value: value.startswith(text),
    "wildcard": wildcard_matches,
}
_LEAF_KEYS = {"term": ("value",), "prefix": ("value",), "wildcard": ("value", "wildcard"),
              "regexp": ("value",)}
_LEAF_PARAMS = {"term": set(), "prefix": set(), "wildcard": {"rewrite"},
                "regexp": {"flags", "max_determinized_states"}}


def _leaf_argument(kind: str, argument: Any) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {}
    if isinstance(argument, dict):
        keys = [key for key in _LEAF_KEYS[kind] if key in argument]
        extra = set(argument) - set(_LEAF_KEYS[kind]) - _LEAF_PARAMS[kind] - {"boost", "_name"}
        if len(keys) != 1 or extra:
            raise RuleBookError(f"bad {kind} arguments {argument!r}")
        params = {key: argument[key] for key in _LEAF_PARAMS[kind] if key in argument}
        argument = argument[keys[0]]
    if not isinstance(argument, str):
        raise RuleBookError(f"{kind} takes a string, not {argument!r}")
    return argument, params


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _bool(body: Any, fields: PathFields) -> bool:
    if not isinstance(body, dict) or set(body) - _BOOL_KEYS:
        raise RuleBookError(f"bad bool body {body!r}")
    required = _as_list(body.get("filter", [])) + _as_list(body.get("must", []))
    should = _as_list(body.get("should", []))
    excluded = _as_list(body.get("must_not", []))
    wanted = _minimum_should_match(body.get("minimum_should_match"), len(should), bool(required))
    # Every clause is evaluated (no short cut), so a malformed one is refused at once.
    required_ok = [_clause(c, fields) for c in required]
    excluded_hit = [_clause(c, fields) for c in excluded]
    should_hits = sum(_clause(c, fields) for c in should)
    return all(required_ok) and not any(excluded_hit) and should_hits >= wanted


def _minimum_should_match(raw: Any, should: int, has_required: bool) -> int:
    """Elasticsearch's rule: default 1 with only should clauses, 0 beside must/filter."""
    if raw is None:
        return 1 if should and not has_required else 0
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise RuleBookError(f"minimum_should_match {raw!r}")
    text = str(raw).strip()
    try:
        if text.endswith("%"):
            share = float(text[:-1])
            part = math.floor(should * abs(share) / 100)
            wanted = part if share >= 0 else should - part
        else:
            number = int(text)
            wanted = number if number >= 0 else should + number
    except ValueError:
        raise RuleBookError(f"minimum_should_match {raw!r}") from None
    return max(wanted, 0)


_LUCENE_ONLY = set("@&~<>#")


def _regexp(pattern: str, flags: str) -> re.Pattern[str]:
    """A Lucene regexp as a Python one, or RuleBookError where the two dialects differ."""
    if flags not in ("ALL", "NONE"):
        raise RuleBookError(f"regexp flags {flags!r}")
    out, position, in_class = [], 0, False
    while position < len(pattern):
        char = pattern[position]
        following = pattern[position + 1:position + 2]
        position += 1
        if char == "\\":
            if not following:
                raise RuleBookError(f"trailing backslash in {pattern!r}")
            position += 1
            if following in "dDwWsS":
                out.append("\\" + following)
            elif following.isalnum():
                raise RuleBookError(f"escape \\{following} in {pattern!r}")
            else:
                out.append(re.escape(following))
        elif in_class:
            in_class = char != "]"
            out.append("\\[" if char == "[" else char)
        elif char == "[":
            in_class = True
            out.append("[")
            if following == "^":
                out.append("^")
                position += 1
            if pattern[position:position + 1] == "]":
                raise RuleBookError(f"']' opening a class in {pattern!r}")
        elif char in "^$\"" or (char == "(" and following == "?") or (char in "*+?}" and following == "+"):
            raise RuleBookError(f"{char!r} reads differently in Lucene: {pattern!r}")
        elif char in _LUCENE_ONLY:
            if flags == "ALL":
                raise RuleBookError(f"Lucene operator {char!r} in {pattern!r}")
            out.append(re.escape(char))
        else:
            out.append(char)
    if in_class:
        raise RuleBookError(f"unclosed class in {pattern!r}")
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as exc:
        raise RuleBookError(f"bad regexp {pattern!r}: {exc}") from None


# --- the rules in effect ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LibraryRule:
    """One library's rule: a query string or a JSON filter."""

    query: Query | None = None
    filter: Any = None

    def matches(self, fields: PathFields) -> bool:
        if self.query is not None:
            return self.query.matches(fields)
        return filter_matches(self.filter, fields)


class RuleBook:
    """Which model requests count, per library: shipped facts plus an operator's file."""

    def __init__(self, rules_file: str | Path | None = None):
        data = json.loads(resources.files("stream.rules").joinpath("data/hub-model-libraries.json")
                          .read_text("utf-8"))
        self.gguf = Query.parse(data["always_counted"]["query"])
        self.default_files = frozenset(data["default_query_files"])
        self.rules: dict[str, LibraryRule | None] = {}
        for name, entry in data["libraries"].items():
            query = entry["countDownloads"]
            self.rules[name] = LibraryRule(query=Query.parse(query)) if query is not None else None
        for name, spec in data["special_filters"].items():
            self.rules[name] = self._checked_filter(spec)
        if rules_file is not None:
            self.rules.update(_operator_rules(Path(rules_file), self._checked_filter))

    @staticmethod
    def _checked_filter(spec: Any) -> LibraryRule:
        rule = LibraryRule(filter=spec)
        rule.matches(PathFields.of("x"))  # evaluates every clause: a bad one fails now
        return rule

    def counts(self, library: str | None, path: str) -> bool:
        """Whether a GET/HEAD of ``path`` in a model repo of ``library`` is a download."""
        fields = PathFields.of(path)
        if self.gguf.matches(fields):
            return True
        rule = self.rules.get(library) if library is not None else None
        if rule is None:
            return path in self.default_files  # at the root only: the whole path is the name
        return rule.matches(fields)


def _operator_rules(file: Path, checked_filter: Any) -> dict[str, LibraryRule | None]:
    text = file.read_text("utf-8")
    data = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("libraries"), dict):
        raise RuleBookError(f"{file}: no 'libraries' mapping")
    rules: dict[str, LibraryRule | None] = {}
    for name, entry in data["libraries"].items():
        if not isinstance(entry, dict) or len(set(entry) & {"countDownloads", "filter"}) != 1 or len(entry) != 1:
            raise RuleBookError(f"{file}: library {name!r} needs exactly one of countDownloads or filter")
        if "filter" in entry:
            rules[name] = checked_filter(entry["filter"])
        else:
            query = entry["countDownloads"]
            rules[name] = LibraryRule(query=Query.parse(query)) if query is not None else None
    return rules
