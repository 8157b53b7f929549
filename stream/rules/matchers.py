"""String matchers for one field value: exact, wildcard, prefix, Lucene regexp, exists.

Each matcher carries a fast ``test`` callable and a few facts about every value it can
match (``fixed_start``, ``fixed_end``, ``literals``) so that lint can tell, without
running it, that a clause can never match a field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

MatcherKind = Literal["term", "wildcard", "prefix", "regexp", "exists"]


class PatternError(ValueError):
    """A pattern cannot be compiled; ``offset`` is the 0-based offset in the pattern.

    Internal: the query and filter compilers turn it into a :class:`RuleError` that names
    the library and where the pattern sits in the rule.
    """

    def __init__(self, message: str, offset: int | None = None):
        self.message = message
        self.offset = offset
        super().__init__(message if offset is None else f"{message} (pattern offset {offset})")


#: A wildcard pattern, split into literal runs and the two wildcard tokens.
STAR = "\x00*"
QMARK = "\x00?"


def _always(_value: str) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Matcher:
    """A test over one (present) field value, plus what every matching value looks like.

    ``fixed_start`` / ``fixed_end``: text every matching value starts / ends with ('' if
    unknown); ``literals``: text runs every matching value contains; ``only_empty``: the
    matcher can only match the empty string.
    """

    kind: MatcherKind
    value: str
    test: Callable[[str], bool] = field(repr=False, compare=False)
    fixed_start: str = ""
    fixed_end: str = ""
    literals: tuple[str, ...] = ()
    only_empty: bool = False


def exact(value: str) -> Matcher:
    """Match a value equal to ``value`` (Elasticsearch ``term`` on a keyword field)."""
    return Matcher(
        "term",
        value,
        value.__eq__,
        fixed_start=value,
        fixed_end=value,
        literals=(value,) if value else (),
        only_empty=not value,
    )


def exists() -> Matcher:
    """Match any present value (``_exists_`` / ``exists``)."""
    return Matcher("exists", "", _always)


def prefix(value: str) -> Matcher:
    """Match a value starting with ``value`` (Elasticsearch ``prefix``)."""
    return Matcher(
        "prefix",
        value,
        lambda s: s.startswith(value),
        fixed_start=value,
        literals=(value,) if value else (),
    )


def split_wildcard(raw: str, *, backslash_escapes: bool = True) -> list[str]:
    """Split a wildcard pattern into literal runs and :data:`STAR` / :data:`QMARK` tokens.

    A backslash makes the next character literal (``\\*`` is a star, not a wildcard).
    Consecutive literal characters are merged into one run.
    """
    tokens: list[str] = []
    run: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if backslash_escapes and ch == "\\" and i + 1 < len(raw):
            run.append(raw[i + 1])
            i += 2
            continue
        if ch in "*?":
            if run:
                tokens.append("".join(run))
                run = []
            tokens.append(STAR if ch == "*" else QMARK)
        else:
            run.append(ch)
        i += 1
    if run:
        tokens.append("".join(run))
    return tokens


def wildcard(tokens: Sequence[str], source: str) -> Matcher:
    """Match the whole value against a wildcard pattern (``*``: any run, ``?``: one char).

    ``*`` also crosses ``/``, as in Elasticsearch. Common shapes (``*x``, ``x*``,
    ``*x*``) become ``str`` methods instead of a regex: they are several times faster.
    """
    toks = list(tokens)
    literals = tuple(t for t in toks if t not in (STAR, QMARK))
    start = toks[0] if toks and toks[0] not in (STAR, QMARK) else ""
    end = toks[-1] if toks and toks[-1] not in (STAR, QMARK) else ""
    test: Callable[[str], bool]
    shape = tuple("L" if t not in (STAR, QMARK) else t for t in toks)
    if not toks:
        test = "".__eq__
    elif shape == ("L",):
        test = toks[0].__eq__
    elif all(t == STAR for t in toks):
        test = _always
    elif shape == ("L", STAR):
        lit = toks[0]
        test = lambda s: s.startswith(lit)  # noqa: E731
    elif shape == (STAR, "L"):
        lit = toks[1]
        test = lambda s: s.endswith(lit)  # noqa: E731
    elif shape == (STAR, "L", STAR):
        lit = toks[1]
        test = lambda s: lit in s  # noqa: E731
    else:
        parts = [".*" if t == STAR else "." if t == QMARK else re.escape(t) for t in toks]
        # DOTALL: a wildcard matches any character, newline included, like Lucene's.
        full = re.compile("".join(parts), re.DOTALL).fullmatch
        test = lambda s: full(s) is not None  # noqa: E731  (a bool, not a Match)
    return Matcher(
        "wildcard",
        source,
        test,
        fixed_start=start,
        fixed_end=end,
        literals=literals,
        only_empty=not toks,
    )


# Lucene regexp operators that Python's re reads differently (or not at all), enabled by
# Elasticsearch's default flags "ALL": rejecting them beats silently matching otherwise.
_LUCENE_OPTIONAL_OPS = "@&~<>#"
_ALLOWED_CLASS_ESCAPES = "dDwWsS"  # supported by Lucene 9 (Elasticsearch 8) and by Python


def lucene_regexp(pattern: str, *, flags: str = "ALL") -> Matcher:
    """Match the whole value against a Lucene regular expression (Elasticsearch ``regexp``).

    The pattern is translated to a Python regex anchored with ``fullmatch``. Constructs
    that Lucene and Python read differently are rejected with a :class:`PatternError` giving
    the offset in the pattern: ``^``/``$`` (literals in Lucene, anchors in
    Python), ``"..."`` strings, the optional operators ``@ & ~ < > #`` (unless
    ``flags="NONE"``, where they are literals), ``(?`` groups, possessive quantifiers and
    letter escapes other than ``\\d \\w \\s`` and their negations.
    """
    if flags not in ("ALL", "NONE"):
        raise PatternError(f"regexp flags {flags!r} are not supported (use ALL or NONE)")
    out: list[str] = []
    in_class = False
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                raise PatternError("regexp ends with a lone backslash", offset=i)
            nxt = pattern[i + 1]
            if nxt.isalnum() and nxt not in _ALLOWED_CLASS_ESCAPES:
                raise PatternError(
                    f"regexp escape '\\{nxt}' has no Lucene meaning that Python shares",
                    offset=i,
                )
            out.append("\\" + nxt if nxt in _ALLOWED_CLASS_ESCAPES else re.escape(nxt))
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            elif ch == "[":
                # Python warns on (and will change) a nested '['; Lucene reads it literally.
                ch = "\\["
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            # A ']' right after '[' or '[^' is literal in Python; keep the two in step.
            if pattern[i + 1 : i + 2] == "^":
                out.append("^")
                i += 1
            if pattern[i + 1 : i + 2] == "]":
                # Python reads "[]" as a literal ']', other engines as an empty class.
                raise PatternError("']' right after '[' is ambiguous; escape it", offset=i + 1)
            i += 1
            continue
        if ch in "^$":
            raise PatternError(
                f"'{ch}' is a literal in Lucene regexp, not an anchor (patterns always match "
                "the whole value); remove it or escape it",
                offset=i,
            )
        if ch == '"':
            raise PatternError('quoted strings ("...") in regexp are not supported', offset=i)
        if ch in _LUCENE_OPTIONAL_OPS:
            if flags == "ALL":
                raise PatternError(
                    f"Lucene regexp operator '{ch}' is not supported (escape it for a literal)",
                    offset=i,
                )
            out.append(re.escape(ch))
            i += 1
            continue
        if ch == "(" and pattern[i + 1 : i + 2] == "?":
            raise PatternError("'(?' group syntax is not Lucene regexp", offset=i)
        if ch in "*+?}" and pattern[i + 1 : i + 2] == "+":
            raise PatternError("a quantifier followed by '+' is not supported", offset=i + 1)
        out.append(ch)
        i += 1
    if in_class:
        raise PatternError("regexp has an unclosed '['", offset=n)
    try:
        compiled = re.compile("".join(out), re.DOTALL)
    except re.error as exc:
        # exc.pos counts in the translated pattern, not the author's: leave it out.
        raise PatternError(f"invalid regexp: {exc.msg}") from None
    full = compiled.fullmatch
    return Matcher("regexp", pattern, lambda s: full(s) is not None)
