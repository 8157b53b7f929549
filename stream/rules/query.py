"""Compiling the Elasticsearch query-string syntax of ``countDownloads`` into a predicate.

Parsing is luqum's (a maintained Lucene query parser). Its grammar already gives plain
boolean precedence: NOT binds tighter than AND, AND tighter than OR, and an implicit
operator (two clauses side by side) binds loosest; we read the implicit operator as OR,
so ``a OR b AND c`` means ``a OR (b AND c)`` and ``a b AND c`` means ``a OR (b AND c)``.
(Elasticsearch itself reads unparenthesised AND/OR mixes differently; ``lint`` warns.)

Supported: ``field:term``, ``field:"phrase"`` (literal, wildcards inside quotes are
plain characters), ``*`` / ``?`` wildcards in unquoted terms, ``AND`` / ``OR`` / ``NOT``,
parentheses, field groups ``field:(a OR b)``, ``_exists_:field`` (field name bare or
quoted) and terms without a field (matching when any of the four fields equals them).
Anything else (ranges, fuzzy, proximity, boosts, ``/regex/``, ``+``/``-``) is an error.
"""

from __future__ import annotations

import re

from luqum import tree as lt
from luqum.exceptions import ParseError
from luqum.thread import parse as luqum_parse

from stream.errors import RuleError
from stream.rules import matchers
from stream.rules.nodes import AllOf, AnyOf, Leaf, Node, Not, Rule
from stream.rules.paths import ANY_FIELD, FIELD_INDEX, FIELD_NAMES

_POSITION_RE = re.compile(r"position (\d+)")
_KNOWN = ", ".join(FIELD_NAMES)
_SYMBOLS = frozenset({"&&", "||"})

# luqum node types we refuse, with the reason shown to the rule author.
_UNSUPPORTED: dict[type, str] = {
    lt.Range: "range queries ([a TO b]) are not supported",
    lt.From: "range queries (>x) are not supported",
    lt.To: "range queries (<x) are not supported",
    lt.Fuzzy: "fuzzy terms (term~N) are not supported",
    lt.Proximity: 'proximity searches ("a b"~N) are not supported',
    lt.Boost: "boosts (^N) are not supported",
    lt.Regex: "regular expressions (/.../) are not supported in the query string; "
    "use a JSON filter with regexp",
    lt.Plus: "'+' (required) is not supported; use AND",
    lt.Prohibit: "'-' (prohibited) is not supported; use NOT",
}


def parse_tree(text: str, library: str | None = None) -> lt.Item:
    """Parse ``text`` with luqum, turning its errors into a :class:`RuleError`."""
    if not text.strip():
        raise RuleError("empty query", library=library, position=0)
    try:
        return luqum_parse(text)
    except ParseError as exc:
        match = _POSITION_RE.search(str(exc))
        # luqum reports "at the end" for an unexpected end of input.
        position = int(match.group(1)) if match else len(text)
        raise RuleError(f"syntax error: {exc}", library=library, position=position) from None


def _text(item: lt.Item) -> str:
    """The clause as written, without the surrounding whitespace luqum keeps."""
    return str(item).strip()


def _unquote(phrase: str) -> str:
    """The literal inside a quoted phrase: quotes removed, backslash escapes resolved."""
    return re.sub(r"\\(.)", r"\1", phrase[1:-1], flags=re.DOTALL)


class _Translator:
    """Walks a luqum tree and builds the rule tree, reporting errors with positions."""

    def __init__(self, library: str | None):
        self.library = library

    def error(self, message: str, item: lt.Item) -> RuleError:
        return RuleError(message, library=self.library, position=item.pos)

    def node(self, item: lt.Item, field: str | None) -> Node:
        if isinstance(item, lt.SearchField):
            return self.search_field(item, field)
        if isinstance(item, lt.Group | lt.FieldGroup):
            return self.node(item.expr, field)
        if isinstance(item, lt.AndOperation):
            children = tuple(self.node(op, field) for op in item.operands)
            return AllOf(children, _text(item), item.pos)
        if isinstance(item, lt.OrOperation | lt.UnknownOperation):
            # Implicit operator = OR (Elasticsearch's default_operator).
            children = tuple(self.node(op, field) for op in item.operands)
            return AnyOf(children, _text(item), item.pos)
        if isinstance(item, lt.Not):
            return Not(self.node(item.a, field), _text(item), item.pos)
        if isinstance(item, lt.Word) and (item.value in _SYMBOLS or item.value.startswith("!")):
            # luqum reads these as words; Elasticsearch as operators: refuse both readings.
            op = "!" if item.value.startswith("!") else item.value
            raise self.error(f"operator {op!r} is not supported; write AND / OR / NOT", item)
        if isinstance(item, lt.Word | lt.Phrase):
            return self.term(item, field)
        for kind, reason in _UNSUPPORTED.items():
            if isinstance(item, kind):
                raise self.error(reason, item)
        raise self.error(f"unsupported construct {type(item).__name__}: {_text(item)}", item)

    def search_field(self, item: lt.SearchField, outer: str | None) -> Node:
        if outer is not None:
            raise self.error(
                f"field {item.name!r} inside the field group of {outer!r} is not supported",
                item,
            )
        if item.name == "_exists_":
            return self.exists(item)
        if item.name not in FIELD_INDEX:
            raise self.error(f"unknown field {item.name!r} (known: {_KNOWN})", item)
        if isinstance(item.expr, lt.Word | lt.Phrase):
            # Keep the whole `field:term` as the clause's text and position.
            return self.term(item.expr, item.name, source=_text(item), position=item.pos)
        return self.node(item.expr, item.name)

    def exists(self, item: lt.SearchField) -> Node:
        expr = item.expr
        if isinstance(expr, lt.Phrase):
            name = _unquote(expr.value)
        elif isinstance(expr, lt.Word) and not expr.has_wildcard():
            name = expr.unescaped_value
        else:
            raise self.error("_exists_ takes one field name", item)
        if name not in FIELD_INDEX:
            raise self.error(f"unknown field {name!r} in _exists_ (known: {_KNOWN})", item)
        return Leaf(FIELD_INDEX[name], matchers.exists(), _text(item), item.pos)

    def term(
        self,
        item: lt.Word | lt.Phrase,
        field: str | None,
        *,
        source: str | None = None,
        position: int | None = None,
    ) -> Leaf:
        if source is None:
            source = f"{field}:{_text(item)}" if field else _text(item)
        if position is None:
            position = item.pos
        index = ANY_FIELD if field is None else FIELD_INDEX[field]
        if isinstance(item, lt.Phrase):
            # Inside quotes `*` and `?` are plain characters.
            return Leaf(index, matchers.exact(_unquote(item.value)), source, position)
        tokens = matchers.split_wildcard(item.value)
        if any(t in (matchers.STAR, matchers.QMARK) for t in tokens):
            return Leaf(index, matchers.wildcard(tokens, item.value), source, position)
        return Leaf(index, matchers.exact("".join(tokens)), source, position)


def parse_query(text: str, library: str | None = None) -> Node:
    """Parse and translate a query string into a rule tree (raises :class:`RuleError`)."""
    return _Translator(library).node(parse_tree(text, library), None)


def compile_query(text: str, library: str | None = None) -> Rule:
    """Compile a ``countDownloads`` query string into a predicate over a path.

    ``compile_query('path_extension:"gguf"')("m/q4.gguf")`` is True. ``library`` only
    names the rule in errors. Raises :class:`~stream.errors.RuleError` (with the library
    and the 0-based character position) for a syntax error, an unknown field or an
    unsupported construct.
    """
    if not isinstance(text, str):
        raise RuleError(f"a query must be a string, not {type(text).__name__}", library=library)
    return Rule(parse_query(text, library), language="query", library=library, source=text)
