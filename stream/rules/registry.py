"""The registry: which file requests count as a download, per library and repo type.

Model repos: a GGUF file always counts (``always_counted``); otherwise the library's own
rule decides (its ``countDownloads`` query, or ``diffusers``' special filter, or an
operator file's rule), and a library without one, an unknown library or no library
(None) falls back to the default query files at the repo root. Dataset repos: every file
request is a candidate (True; deduplication happens downstream). Space repos: nothing.

:meth:`Registry.counts` sits on a stream worker's hot path, so decisions are memoised per
(library, path) in a bounded two-level dict (see ``docs/RULES.md`` for the measurements
against ``functools.lru_cache``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from stream.errors import RuleError
from stream.rules.filters import compile_filter
from stream.rules.nodes import Rule
from stream.rules.paths import Fields, fields_dict, split_path
from stream.rules.query import compile_query
from stream.rules.sources import (
    SHIPPED_ORIGIN,
    RuleSpec,
    ShippedData,
    load_operator_file,
    load_shipped,
)

#: Memoised decisions kept before the memo is cleared and refilled. Real traffic has
#: far fewer distinct (library, path) pairs than requests: the hit rate stays high.
DEFAULT_CACHE_SIZE = 200_000
DEFAULT_LABEL = "default query files"
ALWAYS_LABEL = "gguf (always counted)"
REPO_TYPES = ("model", "dataset", "space")


@dataclass(frozen=True, slots=True)
class LibraryRule:
    """One effective rule: what a library's requests are judged by, and where it came from.

    ``language`` is ``"query"`` or ``"filter"``; ``label`` is what explanations and lint
    print (the library name, or ``default query files`` / ``gguf (always counted)``).
    """

    label: str
    library: str | None
    language: Literal["query", "filter"]
    source: Any
    origin: str
    rule: Rule = field(repr=False)


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a request counts or not: the rule consulted and the clause that decided."""

    path: str
    library: str | None
    repo_type: str
    counts: bool
    rule: str
    clause: str | None
    note: str | None
    fields: dict[str, str | None]

    @property
    def reason(self) -> str:
        """One line: ``open_clip: path:"open_clip_model.safetensors"`` and the like."""
        if self.clause is None:
            text = self.rule if self.counts else f"{self.rule}: no clause matched"
        elif self.counts:
            text = f"{self.rule}: {self.clause}"
        else:
            text = f"{self.rule}: {self.clause} does not match"
        return f"{text} ({self.note})" if self.note else text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (used by ``hubcounter rules explain --json``)."""
        return {
            "path": self.path,
            "library": self.library,
            "repo_type": self.repo_type,
            "counts": self.counts,
            "rule": self.rule,
            "clause": self.clause,
            "note": self.note,
            "reason": self.reason,
            "fields": self.fields,
        }


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _compile(spec: RuleSpec) -> Rule:
    """Compile one spec; an operator file's errors also name the file."""
    try:
        if spec.language == "filter":
            return compile_filter(spec.rule, library=spec.library)
        return compile_query(spec.rule, library=spec.library)
    except RuleError as exc:
        if spec.origin.startswith(SHIPPED_ORIGIN):
            raise
        err = RuleError(f"{exc} (in {spec.origin})")
        err.library, err.position = exc.library, exc.position
        raise err from None


class Registry:
    """Compiled download rules for every known library. Build it with :func:`load_registry`."""

    def __init__(
        self,
        shipped: ShippedData,
        operator_rules: dict[str, RuleSpec] | None = None,
        *,
        operator_file: str | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ):
        if cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        self.shipped = shipped
        self.operator_file = operator_file
        self.cache_size = cache_size

        default_query = " OR ".join(f"path:{_quote(f)}" for f in shipped.default_query_files)
        self.default_rule = LibraryRule(
            DEFAULT_LABEL,
            None,
            "query",
            default_query,
            SHIPPED_ORIGIN,
            compile_query(default_query, library=DEFAULT_LABEL),
        )
        self.always_counted = LibraryRule(
            ALWAYS_LABEL,
            None,
            "query",
            shipped.always_counted_query,
            SHIPPED_ORIGIN,
            compile_query(shipped.always_counted_query, library=ALWAYS_LABEL),
        )

        # Later sources override earlier ones: Hub facts, special filters, operator file.
        specs: dict[str, RuleSpec] = dict(shipped.libraries)
        specs.update(shipped.special_filters)
        specs.update(operator_rules or {})
        self._names = frozenset(specs)
        self._rules: dict[str, LibraryRule] = {}
        for name, spec in specs.items():
            if spec.rule is None:
                continue  # this library sets no rule: the default applies
            special = spec is shipped.special_filters.get(name)
            label = f"{name} (special filter)" if special else name
            self._rules[name] = LibraryRule(
                label, name, spec.language, spec.rule, spec.origin, _compile(spec)
            )

        always = self.always_counted.rule.match_fields
        default = self.default_rule.rule.match_fields
        self._default_decider: Callable[[Fields], bool] = lambda f: always(f) or default(f)
        self._deciders: dict[str | None, Callable[[Fields], bool]] = {
            name: self._decider(always, lr.rule.match_fields) for name, lr in self._rules.items()
        }
        self._memo: dict[str | None, dict[str, bool]] = {}
        self._memo_size = 0

    @staticmethod
    def _decider(
        always: Callable[[Fields], bool], own: Callable[[Fields], bool]
    ) -> Callable[[Fields], bool]:
        return lambda f: always(f) or own(f)

    # --- the hot path ------------------------------------------------------------------

    def counts(self, library: str | None, path: str, repo_type: str = "model") -> bool:
        """Whether a GET/HEAD of ``path`` in a repo of ``library`` is a download (candidate).

        ``library`` may be None (no known library). ``repo_type`` is ``model``,
        ``dataset`` (always True) or ``space`` (always False).
        """
        if repo_type == "model":
            try:
                return self._memo[library][path]
            except KeyError:
                return self._decide(library, path)
        return self._other_repo_type(repo_type)

    def _decide(self, library: str | None, path: str) -> bool:
        """Memo miss: split the path, run the library's predicate, remember the answer."""
        result = self._deciders.get(library, self._default_decider)(split_path(path))
        if self._memo_size >= self.cache_size:
            # Clearing everything is crude but costs nothing per hit, unlike LRU upkeep.
            self._memo.clear()
            self._memo_size = 0
        memo = self._memo.get(library)
        if memo is None:
            memo = self._memo[library] = {}
        memo[path] = result
        self._memo_size += 1
        return result

    @staticmethod
    def _other_repo_type(repo_type: str) -> bool:
        if repo_type == "dataset":
            return True
        if repo_type == "space":
            return False
        raise ValueError(f"unknown repo type {repo_type!r} (expected one of {REPO_TYPES})")

    def cache_clear(self) -> None:
        """Forget every memoised decision (the benchmark uses it for cold runs)."""
        self._memo.clear()
        self._memo_size = 0

    @property
    def cache_len(self) -> int:
        """How many decisions are memoised right now."""
        return self._memo_size

    # --- introspection -----------------------------------------------------------------

    def explain(self, library: str | None, path: str, repo_type: str = "model") -> Explanation:
        """Whether ``path`` counts, with the rule and clause that decided (for people)."""
        fields = fields_dict(path)
        if repo_type != "model":
            counted = self._other_repo_type(repo_type)
            rule = (
                "dataset repo: every file request is a candidate"
                if counted
                else "space repo: no request counts"
            )
            return Explanation(path, library, repo_type, counted, rule, None, None, fields)
        gguf_ok, gguf_node = self.always_counted.rule.explain(path)
        if gguf_ok:
            clause = gguf_node.source if gguf_node is not None else None
            return Explanation(path, library, repo_type, True, ALWAYS_LABEL, clause, None, fields)
        own = self._rules.get(library) if library is not None else None
        lib_rule = own or self.default_rule
        ok, node = lib_rule.rule.explain(path)
        note = None
        if own is None:
            if library is None:
                note = "no library"
            elif library in self._names:
                note = f"{library} sets no rule"
            else:
                note = f"unknown library {library!r}"
        elif not own.origin.startswith(SHIPPED_ORIGIN):
            note = f"from {own.origin}"
        clause = node.source if node is not None else None
        return Explanation(path, library, repo_type, ok, lib_rule.label, clause, note, fields)

    def library_names(self) -> list[str]:
        """Every library the registry knows (shipped and operator file), sorted."""
        return sorted(self._names)

    def is_known(self, library: str | None) -> bool:
        """Whether ``library`` is a library name the registry knows."""
        return library in self._names

    def uses_default(self, library: str | None) -> bool:
        """Whether ``library``'s model repos are judged by the default query files.

        True for None, for an unknown name and for a library that sets no rule.
        """
        return library not in self._rules

    @functools.cached_property
    def version(self) -> str:
        """The rules in effect as a short content hash: the same decisions, the same version.

        It covers what decides (the GGUF rule, the default files, every library's own
        rule and its language), not where a rule came from or how it is labelled.
        """
        decisive = {
            "always": self.always_counted.source, "default": self.default_rule.source,
            "libraries": {name: [rule.language, rule.source] for name, rule in sorted(self._rules.items())},
        }
        canonical = json.dumps(decisive, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def changed_libraries(self, other: Registry) -> tuple[bool, frozenset[str | None]]:
        """Which libraries ``other`` judges differently from this registry.

        Returns (everything, libraries): ``everything`` when the GGUF rule changed (it
        judges every model repo); else the libraries whose own rule changed, plus, when
        the default files changed, every library judged by them (None, unknown names and
        libraries without a rule: ``uses_default`` on either side).
        """
        if self.always_counted.source != other.always_counted.source:
            return True, frozenset()
        changed: set[str | None] = {
            name for name in self._rules.keys() | other._rules.keys()
            if _decisive(self._rules.get(name)) != _decisive(other._rules.get(name))
        }
        if self.default_rule.source != other.default_rule.source:
            changed.add(None)
            changed.update(name for name in self._names | other._names
                           if self.uses_default(name) or other.uses_default(name))
        return False, frozenset(changed)

    def rule_for(self, library: str | None) -> LibraryRule:
        """The rule that judges ``library``'s model repos (besides the GGUF rule)."""
        if library is None:
            return self.default_rule
        return self._rules.get(library, self.default_rule)

    def library_rules(self) -> Iterator[LibraryRule]:
        """Every library's own rule, sorted by library name."""
        for name in sorted(self._rules):
            yield self._rules[name]

    def all_rules(self) -> list[LibraryRule]:
        """The always-counted rule, the default rule and every library's own rule."""
        return [self.always_counted, self.default_rule, *self.library_rules()]

    @property
    def default_query_files(self) -> tuple[str, ...]:
        """The files that count at the repo root when a library sets no rule."""
        return self.shipped.default_query_files

    def __repr__(self) -> str:
        extra = f", operator_file={self.operator_file!r}" if self.operator_file else ""
        return f"Registry({len(self._names)} libraries, {len(self._rules)} own rules{extra})"


def _decisive(rule: LibraryRule | None) -> tuple[str, str] | None:
    return None if rule is None else (rule.language, json.dumps(rule.source, sort_keys=True))


def load_registry(
    path: str | os.PathLike[str] | None = None, *, cache_size: int = DEFAULT_CACHE_SIZE
) -> Registry:
    """Load the shipped rules, plus an operator's rules file on top when ``path`` is given.

    Raises :class:`~stream.errors.RuleError` for a rule that does not compile and
    :class:`~stream.errors.ConfigError` for an unreadable operator file.
    """
    shipped = load_shipped()
    if path is None:
        return Registry(shipped, cache_size=cache_size)
    return Registry(
        shipped,
        load_operator_file(path),
        operator_file=os.fspath(path),
        cache_size=cache_size,
    )
