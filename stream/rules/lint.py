"""Lint for download rules: clauses that can never match, and queries likely misread.

Dead clauses are found by rule, from the field definitions (see
:mod:`stream.rules.paths`), never by library name: an extension never contains a dot or
a ``/`` and is never empty; a prefix always ends with ``/``; a file name never contains
``/``; a path never starts or ends with ``/``; one field never holds two values at once;
and a ``path`` term fixes the other three fields.

Warnings (the rule still works here, but Elasticsearch would read it otherwise):
unparenthesised mixes of AND and OR, ``NOT`` directly under ``OR``, lowercase
``and`` / ``or`` / ``not`` (search terms for Elasticsearch), ``_exists_:path`` (always
true).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from luqum import tree as lt

from stream.rules.filters import parse_filter
from stream.rules.matchers import Matcher
from stream.rules.nodes import AllOf, AtLeast, Const, Leaf, Node, Position, iter_nodes
from stream.rules.paths import (
    ANY_FIELD,
    EXTENSION,
    FIELD_NAMES,
    FILENAME,
    PATH,
    PREFIX,
    split_path,
)
from stream.rules.query import parse_query, parse_tree
from stream.rules.registry import LibraryRule, Registry

Severity = Literal["dead", "warning"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One lint result. ``dead`` findings make ``hubcounter rules lint`` fail."""

    library: str
    severity: Severity
    clause: str
    why: str
    position: Position = None
    origin: str | None = None

    def __str__(self) -> str:
        where = f" at {self.position}" if self.position is not None else ""
        kind = "dead clause" if self.severity == "dead" else "warning"
        return f"{self.library}: {kind}{where}: {self.clause}\n    {self.why}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "library": self.library,
            "severity": self.severity,
            "clause": self.clause,
            "why": self.why,
            "position": self.position,
            "origin": self.origin,
        }


# --- dead clauses ----------------------------------------------------------------------


def _field_dead_reason(field: int, m: Matcher) -> str | None:
    """Why no value of ``field`` can satisfy ``m``, or None if some value might."""
    name = FIELD_NAMES[field]
    if m.kind in ("exists", "regexp"):
        return None  # exists may hold; a regexp is not analysed
    if m.only_empty:
        return f"{name} is never empty (an absent field has no value at all)"
    if field == EXTENSION:
        if m.fixed_start.startswith("."):
            hint = f' (write path_extension:"{m.value[1:]}")' if m.kind == "term" else ""
            return (
                "an extension is written without its leading dot: path_extension holds "
                f"the text after the last dot{hint}"
            )
        if any("/" in lit for lit in m.literals):
            return "an extension never contains '/'"
        if any("." in lit for lit in m.literals):
            hint = ""
            if m.kind == "term":
                stem, _, ext = m.value.rpartition(".")
                hint = (
                    f' (for the file, write path:"{m.value}" or '
                    f'path_filename:"{stem}" AND path_extension:"{ext}")'
                )
            return f"an extension never contains a dot: it is what follows the last dot{hint}"
    elif field == FILENAME:
        if any("/" in lit for lit in m.literals):
            return "a file name never contains '/' (use path or path_prefix for directories)"
    elif field == PREFIX:
        if m.fixed_end and not m.fixed_end.endswith("/"):
            return "a path_prefix always ends with '/'"
        if m.fixed_start.startswith("/"):
            return "paths are relative to the repo root: a path_prefix never starts with '/'"
    elif field == PATH:
        if m.fixed_start.startswith("/"):
            return "paths are relative to the repo root: a path never starts with '/'"
        if m.fixed_end.endswith("/"):
            return "a file path never ends with '/'"
    return None


def _leaf_dead_reason(leaf: Leaf) -> str | None:
    if leaf.field != ANY_FIELD:
        return _field_dead_reason(leaf.field, leaf.matcher)
    reasons = [_field_dead_reason(i, leaf.matcher) for i in range(len(FIELD_NAMES))]
    if all(reasons):
        return "no field can hold this value: " + "; ".join(r for r in reasons if r)
    return None


def _conjunction_dead_reason(node: AllOf) -> str | None:
    """Contradictions between the direct term / exists leaves of one AND."""
    values: dict[int, str] = {}
    required: set[int] = set()
    for child in node.children:
        if not isinstance(child, Leaf) or child.field == ANY_FIELD:
            continue
        if child.matcher.kind == "exists":
            required.add(child.field)
        elif child.matcher.kind == "term":
            seen = values.setdefault(child.field, child.matcher.value)
            if seen != child.matcher.value:
                name = FIELD_NAMES[child.field]
                return f"{name} cannot be both {seen!r} and {child.matcher.value!r}"
    if PATH in values:
        implied = split_path(values[PATH])
        for field, value in values.items():
            if implied[field] != value:
                name = FIELD_NAMES[field]
                return f"path {values[PATH]!r} has {name} {implied[field]!r}, not {value!r}"
        for field in required:
            if implied[field] is None:
                name = FIELD_NAMES[field]
                return f"path {values[PATH]!r} has no {name}"
    return None


def lint_node(node: Node, library: str, origin: str | None = None) -> list[Finding]:
    """Dead clauses (and always-true ``exists`` on path) in a compiled rule tree."""
    findings: list[Finding] = []
    for current in iter_nodes(node):
        why: str | None = None
        if isinstance(current, Leaf):
            why = _leaf_dead_reason(current)
            if why is None and current.field == PATH and current.matcher.kind == "exists":
                findings.append(
                    Finding(
                        library,
                        "warning",
                        current.source,
                        "always true: every request has a path",
                        current.position,
                        origin,
                    )
                )
        elif isinstance(current, AllOf):
            why = _conjunction_dead_reason(current)
        elif isinstance(current, AtLeast) and current.k > len(current.children):
            why = f"needs {current.k} matching clauses but has {len(current.children)}"
        elif isinstance(current, Const) and not current.value:
            why = "never matches"
        if why is not None:
            findings.append(Finding(library, "dead", current.source, why, current.position, origin))
    return findings


# --- query-string warnings -------------------------------------------------------------

_OR_LIKE = (lt.OrOperation, lt.UnknownOperation)
_WORD_OPERATORS = frozenset({"AND", "OR", "NOT"})


def _is_or(item: lt.Item) -> bool:
    return isinstance(item, _OR_LIKE)


def _render(item: lt.Item) -> str:
    """The query with every nested operation in parentheses: how we read it."""
    if isinstance(item, lt.BaseOperation):
        op = " AND " if isinstance(item, lt.AndOperation) else " OR "
        parts = [
            f"({_render(o)})" if isinstance(o, lt.BaseOperation) else _render(o)
            for o in item.operands
        ]
        return op.join(parts)
    return str(item).strip()


def _luqum_items(
    item: lt.Item, parent: lt.Item | None = None
) -> Iterator[tuple[lt.Item, lt.Item | None]]:
    """Yield (item, parent) for every node of a luqum tree."""
    yield item, parent
    for child in item.children:
        yield from _luqum_items(child, item)


def _query_warnings(tree: lt.Item, library: str, origin: str | None) -> list[Finding]:
    findings: list[Finding] = []

    def warn(item: lt.Item, why: str) -> None:
        findings.append(Finding(library, "warning", str(item).strip(), why, item.pos, origin))

    for item, parent in _luqum_items(tree):
        if isinstance(item, lt.BaseOperation) and any(
            isinstance(o, lt.BaseOperation) and _is_or(o) != _is_or(item) for o in item.operands
        ):
            warn(
                item,
                f"unparenthesised mix of AND and OR: read here as {_render(item)} (AND binds "
                "tighter), but Elasticsearch's query_string makes AND operands required "
                "and OR operands optional, so it reads it otherwise; add parentheses",
            )
        elif isinstance(item, lt.Not) and parent is not None and _is_or(parent):
            warn(
                item,
                "NOT directly under OR: Elasticsearch turns 'a OR NOT b' into a required "
                "exclusion (a AND NOT b); rewrite the rule so it does not rely on OR NOT",
            )
        elif (
            isinstance(item, lt.Word)
            and not isinstance(parent, lt.SearchField)
            and item.value.upper() in _WORD_OPERATORS
            and item.value != item.value.upper()
        ):
            warn(
                item,
                f"{item.value!r} is not an operator: Elasticsearch reads lowercase "
                f"{item.value!r} as a search term (and so does this compiler: a term "
                f"without a field); write {item.value.upper()}",
            )
    return findings


# --- entry points ----------------------------------------------------------------------


def lint_query(text: str, library: str = "(query)", origin: str | None = None) -> list[Finding]:
    """Lint a query string. Raises :class:`~stream.errors.RuleError` if it does not compile."""
    node = parse_query(text, library)
    tree = parse_tree(text, library)
    return _sorted(lint_node(node, library, origin) + _query_warnings(tree, library, origin))


def lint_filter(
    spec: Mapping[str, Any], library: str = "(filter)", origin: str | None = None
) -> list[Finding]:
    """Lint a JSON bool filter. Raises :class:`~stream.errors.RuleError` if it is invalid."""
    return _sorted(lint_node(parse_filter(spec, library), library, origin))


def lint_rule(rule: LibraryRule) -> list[Finding]:
    """Lint one effective rule of a registry."""
    if rule.language == "filter":
        return lint_filter(rule.source, rule.label, rule.origin)
    return lint_query(rule.source, rule.label, rule.origin)


def lint_registry(registry: Registry) -> list[Finding]:
    """Lint every effective rule: always-counted, default, shipped and operator rules."""
    findings: list[Finding] = []
    for rule in registry.all_rules():
        findings.extend(lint_rule(rule))
    return findings


def has_dead(findings: Iterable[Finding]) -> bool:
    """Whether any finding is a dead clause (lint's failure condition)."""
    return any(f.severity == "dead" for f in findings)


def _sorted(findings: list[Finding]) -> list[Finding]:
    """Dead clauses first, then by position (offsets numerically, JSON positions by text)."""

    def key(f: Finding) -> tuple[bool, int, str]:
        pos = f.position
        return (f.severity != "dead", pos if isinstance(pos, int) else -1, str(pos or ""))

    return sorted(findings, key=key)
