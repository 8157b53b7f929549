"""The rule tree both languages compile to, its fast predicate form, and explanations.

A query string and a JSON bool filter are each translated into the same small tree of
nodes (:class:`Leaf`, :class:`AllOf`, :class:`AnyOf`, :class:`Not`, :class:`AtLeast`,
:class:`Const`). The tree is kept for ``explain`` and ``lint``; for matching it is turned
once into nested closures over a :data:`~stream.rules.paths.Fields` tuple, so a path is
split once and each clause costs a tuple index and a comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from stream.rules.matchers import Matcher
from stream.rules.paths import ANY_FIELD, FIELD_NAMES, Fields, split_path

FieldPredicate = Callable[[Fields], bool]
Language = Literal["query", "filter"]
#: Where a node sits in its rule: a character offset in a query string, or a JSON
#: position such as ``bool.should[2].regexp`` in a filter.
Position = int | str | None


@dataclass(frozen=True, slots=True, eq=False)
class Leaf:
    """One test of one field (or of any field when ``field`` is ``ANY_FIELD``)."""

    field: int
    matcher: Matcher
    source: str
    position: Position = None

    @property
    def field_name(self) -> str | None:
        """The field's name, None for a term written without a field."""
        return None if self.field == ANY_FIELD else FIELD_NAMES[self.field]


@dataclass(frozen=True, slots=True, eq=False)
class AllOf:
    """Every child matches (AND; ``filter`` + ``must``)."""

    children: tuple[Node, ...]
    source: str
    position: Position = None


@dataclass(frozen=True, slots=True, eq=False)
class AnyOf:
    """At least one child matches (OR, implicit OR)."""

    children: tuple[Node, ...]
    source: str
    position: Position = None


@dataclass(frozen=True, slots=True, eq=False)
class Not:
    """The child does not match (NOT; ``must_not``)."""

    child: Node
    source: str
    position: Position = None


@dataclass(frozen=True, slots=True, eq=False)
class AtLeast:
    """At least ``k`` children match (``should`` with ``minimum_should_match``)."""

    k: int
    children: tuple[Node, ...]
    source: str
    position: Position = None


@dataclass(frozen=True, slots=True, eq=False)
class Const:
    """Always ``value`` (an empty ``bool`` matches everything, as in Elasticsearch)."""

    value: bool
    source: str
    position: Position = None


Node = Leaf | AllOf | AnyOf | Not | AtLeast | Const


def iter_nodes(node: Node) -> Iterator[Node]:
    """Yield ``node`` and every node below it, depth first, parents before children."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, AllOf | AnyOf | AtLeast):
            stack.extend(reversed(current.children))
        elif isinstance(current, Not):
            stack.append(current.child)


# --- fast predicates -------------------------------------------------------------------


def _leaf_predicate(leaf: Leaf) -> FieldPredicate:
    matcher = leaf.matcher
    i = leaf.field
    kind = matcher.kind
    if i == ANY_FIELD:
        if kind == "term":
            value = matcher.value
            # Absent fields are None, never equal to a string.
            return lambda f: value in f
        if kind == "exists":
            return lambda f: True  # `path` is always present
        test = matcher.test

        def any_field(f: Fields) -> bool:
            # An explicit loop: any() over a generator costs a frame per call.
            for v in f:  # noqa: SIM110
                if v is not None and test(v):
                    return True
            return False

        return any_field
    if kind == "term":
        value = matcher.value
        return lambda f: f[i] == value
    if kind == "exists":
        return lambda f: f[i] is not None
    test = matcher.test
    return lambda f: (v := f[i]) is not None and test(v)


def _merge_term_sets(children: tuple[Node, ...]) -> list[FieldPredicate]:
    """Compile OR operands, folding equality terms on one field into one set lookup.

    ``path:"a" OR path:"b" OR ...`` (the most common rule shape) then costs one hash
    lookup instead of a chain of comparisons.
    """
    by_field: dict[int, set[str]] = {}
    rest: list[FieldPredicate] = []
    for child in children:
        if isinstance(child, Leaf) and child.matcher.kind == "term" and child.field != ANY_FIELD:
            by_field.setdefault(child.field, set()).add(child.matcher.value)
        else:
            rest.append(compile_node(child))
    preds = [_equals(i, values) for i, values in by_field.items()]
    return preds + rest


def _equals(i: int, values: set[str]) -> FieldPredicate:
    """Field ``i`` equals one of ``values`` (absent fields are None: never a member)."""
    if len(values) == 1:
        (value,) = values
        return lambda f: f[i] == value
    frozen = frozenset(values)
    return lambda f: f[i] in frozen


def _any(preds: list[FieldPredicate]) -> FieldPredicate:
    if not preds:
        return lambda f: False
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda f: a(f) or b(f)
    ps = tuple(preds)

    def any_of(f: Fields) -> bool:
        for p in ps:  # noqa: SIM110  (faster than any() over a generator)
            if p(f):
                return True
        return False

    return any_of


def _all(preds: list[FieldPredicate]) -> FieldPredicate:
    if not preds:
        return lambda f: True
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda f: a(f) and b(f)
    ps = tuple(preds)

    def all_of(f: Fields) -> bool:
        for p in ps:  # noqa: SIM110  (faster than all() over a generator)
            if not p(f):
                return False
        return True

    return all_of


def compile_node(node: Node) -> FieldPredicate:
    """Turn a rule tree into one predicate over a :data:`Fields` tuple."""
    if isinstance(node, Leaf):
        return _leaf_predicate(node)
    if isinstance(node, AnyOf):
        return _any(_merge_term_sets(node.children))
    if isinstance(node, AllOf):
        return _all([compile_node(c) for c in node.children])
    if isinstance(node, Not):
        inner = compile_node(node.child)
        return lambda f: not inner(f)
    if isinstance(node, AtLeast):
        if node.k <= 0:
            return lambda f: True
        if node.k == 1:
            return _any(_merge_term_sets(node.children))
        if node.k == len(node.children):
            return _all([compile_node(c) for c in node.children])
        k = node.k
        ps = tuple(compile_node(c) for c in node.children)
        return lambda f: sum(1 for p in ps if p(f)) >= k
    value = node.value
    return lambda f: value


# --- explanations ----------------------------------------------------------------------


def explain_node(node: Node, fields: Fields) -> tuple[bool, Node | None]:
    """Evaluate ``node`` slowly, returning the result and the clause that decided it.

    A match is decided by the first matching OR operand, by the whole AND, by the NOT;
    a miss by the first failing AND operand, or by nothing (None) when no OR operand
    matched.
    """
    if isinstance(node, Leaf):
        return compile_node(node)(fields), node
    if isinstance(node, Const):
        return node.value, node
    if isinstance(node, Not):
        inner, _ = explain_node(node.child, fields)
        return not inner, node
    if isinstance(node, AllOf):
        for child in node.children:
            ok, why = explain_node(child, fields)
            if not ok:
                return False, why
        return True, node
    if isinstance(node, AnyOf):
        for child in node.children:
            ok, why = explain_node(child, fields)
            if ok:
                return True, why
        return False, None
    matched = [c for c in node.children if explain_node(c, fields)[0]]
    if len(matched) >= node.k:
        return True, (matched[0] if len(matched) == 1 else node)
    return False, None


class Rule:
    """A compiled rule: ``rule(path) -> bool``, plus its tree for explain and lint."""

    __slots__ = ("language", "library", "match_fields", "node", "source")

    def __init__(self, node: Node, *, language: Language, library: str | None, source: object):
        self.node = node
        self.language: Language = language
        self.library = library
        #: The rule as written: the query text, or the filter mapping.
        self.source = source
        #: The fast predicate over already-split fields (what the registry calls).
        self.match_fields: FieldPredicate = compile_node(node)

    def __call__(self, path: str) -> bool:
        """Whether ``path`` (relative to the repo root) matches the rule."""
        return self.match_fields(split_path(path))

    def explain(self, path: str) -> tuple[bool, Node | None]:
        """Whether ``path`` matches, and the clause that decided (see :func:`explain_node`)."""
        return explain_node(self.node, split_path(path))

    def __repr__(self) -> str:
        return f"Rule({self.language}, library={self.library!r}, source={self.source!r})"
