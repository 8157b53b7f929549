"""Property tests: the compiled predicates obey boolean logic and wildcard semantics."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.rules import compile_filter, compile_query
from stream.rules.paths import split_path

pytestmark = pytest.mark.unit

# Atoms with an independent reference meaning over the split fields.
ATOMS: dict[str, Callable[[tuple], bool]] = {
    'path:"config.json"': lambda f: f[0] == "config.json",
    'path_extension:"bin"': lambda f: f[2] == "bin",
    "path_extension:json": lambda f: f[2] == "json",
    'path_prefix:"x/"': lambda f: f[1] == "x/",
    'path_filename:"model"': lambda f: f[3] == "model",
    "_exists_:path_prefix": lambda f: f[1] is not None,
    '_exists_:"path_extension"': lambda f: f[2] is not None,
    "path:*model*": lambda f: "model" in f[0],
    "path_filename:*pytorch_model": lambda f: f[3] is not None and f[3].endswith("pytorch_model"),
}

DIRS = ["", "x/", "a/x/", "x/y/"]
NAMES = [
    "config.json",
    "model.bin",
    "model",
    "pytorch_model.bin",
    "open_clip_pytorch_model.bin",
    ".bin",
    "model.",
    "model.json",
    "LICENSE",
    "model.safetensors.index.json",
]
paths = st.builds(lambda d, n: d + n, st.sampled_from(DIRS), st.sampled_from(NAMES)) | st.text(
    alphabet="abx./_", max_size=12
)


@dataclass(frozen=True)
class Expr:
    """A boolean expression over ATOMS: op is 'atom', 'not', 'and', 'or' or 'implicit'."""

    op: str
    args: tuple = ()
    atom: str = ""

    def evaluate(self, fields: tuple) -> bool:
        if self.op == "atom":
            return ATOMS[self.atom](fields)
        if self.op == "not":
            return not self.args[0].evaluate(fields)
        if self.op == "and":
            return all(a.evaluate(fields) for a in self.args)
        return any(a.evaluate(fields) for a in self.args)

    def render(self, minimal: bool) -> str:
        """Query text; ``minimal`` uses only the parentheses precedence requires."""
        if self.op == "atom":
            return self.atom
        if self.op == "not":
            inner = self.args[0]
            text = inner.render(minimal)
            return f"NOT {text}" if inner.op in ("atom", "not") else f"NOT ({text})"
        joiner = {"and": " AND ", "or": " OR ", "implicit": " "}[self.op]
        parts = []
        for arg in self.args:
            text = arg.render(minimal)
            # Binding strength: NOT/atom > AND > OR > implicit OR.
            needs = not minimal or _strength(arg) <= _strength(self)
            parts.append(f"({text})" if needs and arg.op not in ("atom", "not") else text)
        return joiner.join(parts)


def _strength(e: Expr) -> int:
    return {"atom": 4, "not": 3, "and": 2, "or": 1, "implicit": 0}[e.op]


atoms = st.sampled_from(sorted(ATOMS)).map(lambda a: Expr("atom", atom=a))
exprs = st.recursive(
    atoms,
    lambda sub: st.one_of(
        sub.map(lambda e: Expr("not", (e,))),
        st.tuples(
            st.sampled_from(["and", "or", "implicit"]), st.lists(sub, min_size=2, max_size=3)
        ).map(lambda t: Expr(t[0], tuple(t[1]))),
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(exprs, paths)
def test_compiled_query_agrees_with_boolean_logic(expr: Expr, path: str) -> None:
    """With minimal or full parentheses, the compiled query is the boolean expression."""
    fields = split_path(path)
    expected = expr.evaluate(fields)
    assert compile_query(expr.render(minimal=True))(path) == expected
    assert compile_query(expr.render(minimal=False))(path) == expected


@settings(max_examples=200, deadline=None)
@given(exprs, paths)
def test_not_is_negation(expr: Expr, path: str) -> None:
    """NOT (q) holds exactly when q does not."""
    q = expr.render(minimal=True)
    assert compile_query(f"NOT ({q})")(path) == (not compile_query(q)(path))


@settings(max_examples=200, deadline=None)
@given(exprs, exprs, paths)
def test_or_and_semantics(a: Expr, b: Expr, path: str) -> None:
    """(a) OR (b) holds when either holds; (a) AND (b) when both do."""
    qa, qb = a.render(minimal=True), b.render(minimal=True)
    ra, rb = compile_query(qa)(path), compile_query(qb)(path)
    assert compile_query(f"({qa}) OR ({qb})")(path) == (ra or rb)
    assert compile_query(f"({qa}) AND ({qb})")(path) == (ra and rb)


@settings(max_examples=200, deadline=None)
@given(atoms, atoms, atoms, paths)
def test_and_binds_tighter_than_or(a: Expr, b: Expr, c: Expr, path: str) -> None:
    """a OR b AND c == a OR (b AND c), and a AND b OR c == (a AND b) OR c."""
    x, y, z = a.atom, b.atom, c.atom
    assert compile_query(f"{x} OR {y} AND {z}")(path) == compile_query(f"{x} OR ({y} AND {z})")(
        path
    )
    assert compile_query(f"{x} AND {y} OR {z}")(path) == compile_query(f"({x} AND {y}) OR {z}")(
        path
    )


# Wildcard patterns: letters, dots, slashes and the two wildcards (no '[': fnmatch's class).
patterns = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(list("ab.x*?")),
    st.text(alphabet="ab.x/*?", max_size=8),
)
values = st.text(alphabet="ab.x/", max_size=10)


@settings(max_examples=400, deadline=None)
@given(patterns, values)
def test_query_wildcard_matches_like_fnmatch(pattern: str, value: str) -> None:
    """Unquoted wildcards: `*` any run (across '/'), `?` one character, whole value."""
    assert compile_query(f"path:{pattern}")(value) == fnmatch.fnmatchcase(value, pattern)


@settings(max_examples=300, deadline=None)
@given(patterns, values)
def test_filter_wildcard_matches_like_fnmatch(pattern: str, value: str) -> None:
    """The JSON wildcard clause has the same semantics."""
    assert compile_filter({"wildcard": {"path": pattern}})(value) == fnmatch.fnmatchcase(
        value, pattern
    )


# The same atoms as JSON filter clauses, using every clause type.
FILTER_ATOMS: dict[str, dict] = {
    'path:"config.json"': {"term": {"path": "config.json"}},
    'path_extension:"bin"': {"term": {"path_extension": {"value": "bin"}}},
    "path_extension:json": {"terms": {"path_extension": ["json"]}},
    'path_prefix:"x/"': {"term": {"path_prefix": "x/"}},
    'path_filename:"model"': {"regexp": {"path_filename": "model"}},
    "_exists_:path_prefix": {"exists": {"field": "path_prefix"}},
    '_exists_:"path_extension"': {"exists": {"field": "path_extension"}},
    "path:*model*": {"wildcard": {"path": "*model*"}},
    "path_filename:*pytorch_model": {"regexp": {"path_filename": ".*pytorch_model"}},
}


def to_filter(expr: Expr) -> dict:
    """The expression as a JSON bool filter: AND -> must, OR -> should, NOT -> must_not."""
    if expr.op == "atom":
        return FILTER_ATOMS[expr.atom]
    children = [to_filter(a) for a in expr.args]
    if expr.op == "not":
        return {"bool": {"must_not": children}}
    if expr.op == "and":
        return {"bool": {"filter": children[:1], "must": children[1:]}}
    return {"bool": {"should": children}}


@settings(max_examples=300, deadline=None)
@given(exprs, paths)
def test_filter_agrees_with_boolean_logic(expr: Expr, path: str) -> None:
    """A bool filter built from an expression means that expression (ES default msm)."""
    assert compile_filter(to_filter(expr))(path) == expr.evaluate(split_path(path))
