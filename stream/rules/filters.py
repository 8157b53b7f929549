"""Compiling an Elasticsearch JSON bool filter (the Hub docs' form) into a predicate.

Clauses: ``term``, ``terms``, ``wildcard``, ``prefix``, ``regexp``, ``exists`` and
``bool`` with ``filter`` / ``must`` / ``should`` / ``must_not`` /
``minimum_should_match``. A clause list may be a single dict. A bare bool body without
the ``"bool"`` key (``{"filter": [...]}``, the older docs' form) is accepted at the top.
Errors name the library and the JSON position, e.g. ``bool.should[2].regexp``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from stream.errors import RuleError
from stream.rules import matchers
from stream.rules.nodes import AllOf, AtLeast, Const, Leaf, Node, Not, Rule
from stream.rules.paths import FIELD_INDEX, FIELD_NAMES

_BOOL_KEYS = frozenset({"filter", "must", "should", "must_not", "minimum_should_match", "boost"})
_KNOWN = ", ".join(FIELD_NAMES)


def _join(position: str, key: str) -> str:
    return f"{position}.{key}" if position else key


def _compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class _Translator:
    """Walks the filter mapping and builds the rule tree."""

    def __init__(self, library: str | None):
        self.library = library

    def error(self, position: str, message: str) -> RuleError:
        where = position or "top level"
        return RuleError(f"{where}: {message}", library=self.library)

    def top(self, spec: Any) -> Node:
        if isinstance(spec, Mapping) and spec and "bool" not in spec and set(spec) <= _BOOL_KEYS:
            # The older docs' form: a bool body without the "bool" key.
            return self.bool_body(spec, "")
        return self.clause(spec, "")

    def clause(self, obj: Any, position: str) -> Node:
        if not isinstance(obj, Mapping) or len(obj) != 1:
            raise self.error(position, f"a clause is an object with one key, not {_compact(obj)}")
        ((kind, body),) = obj.items()
        here = _join(position, kind)
        handler = getattr(self, f"k_{kind}", None) if isinstance(kind, str) else None
        if handler is None:
            raise self.error(
                here,
                f"unsupported clause {kind!r} "
                "(supported: term, terms, wildcard, prefix, regexp, exists, bool)",
            )
        return handler(body, here, _compact(obj))

    # --- leaves ------------------------------------------------------------------------

    def single_field(self, body: Any, position: str) -> tuple[str, str]:
        """The one field a leaf clause names (``boost`` aside), and its position."""
        if not isinstance(body, Mapping):
            raise self.error(position, f"expected an object, not {_compact(body)}")
        fields = [k for k in body if k != "boost"]
        if len(fields) != 1:
            raise self.error(position, f"expected exactly one field, got {_compact(body)}")
        name = fields[0]
        here = _join(position, str(name))
        if name not in FIELD_INDEX:
            raise self.error(here, f"unknown field {name!r} (known: {_KNOWN})")
        return name, here

    def field_and_params(
        self, body: Any, position: str, value_keys: tuple[str, ...], extra: frozenset[str]
    ) -> tuple[int, str, dict[str, Any], str]:
        """Read ``{field: value}`` or ``{field: {value_key: value, ...params}}``."""
        name, here = self.single_field(body, position)
        raw = body[name]
        params: dict[str, Any] = {}
        if isinstance(raw, Mapping):
            unknown = set(raw) - set(value_keys) - extra - {"boost", "_name"}
            if unknown:
                raise self.error(here, f"unsupported parameter(s) {sorted(unknown)}")
            present = [k for k in value_keys if k in raw]
            if len(present) != 1:
                raise self.error(here, f"expected one of {list(value_keys)}")
            params = {k: v for k, v in raw.items() if k in extra}
            raw = raw[present[0]]
        if not isinstance(raw, str):
            raise self.error(here, f"the value must be a string, not {_compact(raw)}")
        return FIELD_INDEX[name], raw, params, here

    def k_term(self, body: Any, position: str, source: str) -> Node:
        field, value, _, _ = self.field_and_params(body, position, ("value",), frozenset())
        return Leaf(field, matchers.exact(value), source, position)

    def k_prefix(self, body: Any, position: str, source: str) -> Node:
        field, value, _, _ = self.field_and_params(body, position, ("value",), frozenset())
        return Leaf(field, matchers.prefix(value), source, position)

    def k_wildcard(self, body: Any, position: str, source: str) -> Node:
        field, value, _, _ = self.field_and_params(
            body, position, ("value", "wildcard"), frozenset({"rewrite"})
        )
        tokens = matchers.split_wildcard(value)
        return Leaf(field, matchers.wildcard(tokens, value), source, position)

    def k_regexp(self, body: Any, position: str, source: str) -> Node:
        field, value, params, here = self.field_and_params(
            body, position, ("value",), frozenset({"flags", "max_determinized_states"})
        )
        try:
            matcher = matchers.lucene_regexp(value, flags=params.get("flags", "ALL"))
        except matchers.PatternError as exc:
            raise self.error(here, f"{exc} in {value!r}") from None
        return Leaf(field, matcher, source, position)

    def k_terms(self, body: Any, position: str, source: str) -> Node:
        name, here = self.single_field(body, position)
        values = body[name]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise self.error(here, f"expected a list of strings, not {_compact(values)}")
        field = FIELD_INDEX[name]
        leaves = tuple(
            Leaf(field, matchers.exact(v), f"{name}:{_compact(v)}", f"{here}[{i}]")
            for i, v in enumerate(values)
        )
        # terms = any of the values; AtLeast(1) compiles to a single set lookup.
        return AtLeast(1, leaves, source, position)

    def k_exists(self, body: Any, position: str, source: str) -> Node:
        if not isinstance(body, Mapping) or set(body) - {"field", "boost"} or "field" not in body:
            raise self.error(position, f'expected {{"field": <name>}}, not {_compact(body)}')
        name = body["field"]
        if name not in FIELD_INDEX:
            raise self.error(_join(position, "field"), f"unknown field {name!r} (known: {_KNOWN})")
        return Leaf(FIELD_INDEX[name], matchers.exists(), source, position)

    # --- bool --------------------------------------------------------------------------

    def k_bool(self, body: Any, position: str, source: str) -> Node:
        return self.bool_body(body, position, source)

    def clauses(self, body: Mapping[str, Any], key: str, position: str) -> list[Node]:
        if key not in body:
            return []
        value = body[key]
        here = _join(position, key)
        if isinstance(value, Mapping):
            return [self.clause(value, here)]
        if not isinstance(value, list):
            raise self.error(here, f"expected a clause or a list of clauses, not {_compact(value)}")
        return [self.clause(item, f"{here}[{i}]") for i, item in enumerate(value)]

    def bool_body(self, body: Any, position: str, source: str | None = None) -> Node:
        if source is None:
            source = _compact(body)
        if not isinstance(body, Mapping):
            raise self.error(position, f"a bool body is an object, not {_compact(body)}")
        unknown = set(body) - _BOOL_KEYS
        if unknown:
            raise self.error(position, f"unsupported bool key(s) {sorted(map(str, unknown))}")
        required = self.clauses(body, "filter", position) + self.clauses(body, "must", position)
        should = self.clauses(body, "should", position)
        must_not = self.clauses(body, "must_not", position)
        k = self.minimum_should_match(body, position, len(should), bool(required))
        parts: list[Node] = list(required)
        parts.extend(Not(c, f"NOT {c.source}", c.position) for c in must_not)
        if should and k > 0:
            parts.append(AtLeast(k, tuple(should), _compact(body["should"]), position))
        elif k > len(should):
            # Elasticsearch: asking for more should matches than there are matches nothing.
            parts.append(Const(False, f"minimum_should_match {k} > {len(should)} clauses"))
        if not parts:
            return Const(True, source or "{}", position)  # an empty bool matches all
        if len(parts) == 1 and not must_not:
            return parts[0]
        return AllOf(tuple(parts), source, position)

    def minimum_should_match(
        self, body: Mapping[str, Any], position: str, n_should: int, has_required: bool
    ) -> int:
        here = _join(position, "minimum_should_match")
        raw = body.get("minimum_should_match")
        if raw is None:
            # Elasticsearch: 1 when the bool has only should clauses, 0 beside must/filter.
            return 0 if has_required or n_should == 0 else 1
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise self.error(here, f"expected an integer or a percentage, not {_compact(raw)}")
        text = str(raw).strip()
        try:
            if text.endswith("%"):
                pct = float(text[:-1])
                count = math.floor(n_should * abs(pct) / 100)
                value = count if pct >= 0 else n_should - count
            else:
                number = int(text)
                value = number if number >= 0 else n_should + number
        except ValueError:
            raise self.error(here, f"cannot read {raw!r} (integer or percentage)") from None
        return max(value, 0)


def parse_filter(spec: Any, library: str | None = None) -> Node:
    """Translate a JSON bool filter into a rule tree (raises :class:`RuleError`)."""
    return _Translator(library).top(spec)


def compile_filter(spec: Mapping[str, Any], library: str | None = None) -> Rule:
    """Compile an Elasticsearch JSON bool filter into a predicate over a path.

    ``compile_filter({"term": {"path": "model_index.json"}})("model_index.json")`` is
    True. ``library`` only names the rule in errors. Raises
    :class:`~stream.errors.RuleError` naming the library and the JSON position of a bad
    clause (e.g. ``bool.should[2].regexp``).
    """
    return Rule(parse_filter(spec, library), language="filter", library=library, source=spec)
