"""Lint: dead clauses found by rule, and warnings about queries Elasticsearch reads otherwise."""

from __future__ import annotations

import pytest

from stream.rules import load_registry
from stream.rules.lint import has_dead, lint_filter, lint_query, lint_registry
from stream.rules.sources import read_shipped_json

pytestmark = pytest.mark.unit


def _dead(query: str) -> list[str]:
    return [f.why for f in lint_query(query, "lib") if f.severity == "dead"]


def _warnings(query: str) -> list[str]:
    return [f.why for f in lint_query(query, "lib") if f.severity == "warning"]


def test_shipped_data_has_exactly_the_two_known_dead_clauses() -> None:
    """ssr-speech and quantumpeer are the dead clauses in the shipped data today."""
    dead = [f for f in lint_registry(load_registry()) if f.severity == "dead"]
    assert sorted((f.library, f.clause) for f in dead) == [
        ("quantumpeer", 'path_extension:"setup.py"'),
        ("ssr-speech", 'path_extension:".pth"'),
    ]


def test_extension_with_leading_dot_is_dead() -> None:
    """The extension is stored without its dot: ".pth" can never be a value."""
    (why,) = _dead('path_extension:".pth"')
    assert "leading dot" in why


def test_extension_containing_a_dot_is_dead() -> None:
    """The extension is what follows the LAST dot: "setup.py" can never be a value."""
    (why,) = _dead('path_extension:"setup.py"')
    assert "never contains a dot" in why


def test_dead_clause_found_by_rule_not_by_name() -> None:
    """Any library, any such value: the check is generic."""
    assert _dead('path_extension:"tar.gz" OR path:"x"')
    assert _dead('path_extension:"a/b"')
    assert _dead('path_extension:""')
    assert _dead("path_extension:*.gz")


def test_prefix_without_trailing_slash_is_dead() -> None:
    """path_prefix always ends with '/'."""
    assert "ends with '/'" in _dead('path_prefix:"checkpoints"')[0]
    assert not _dead('path_prefix:"checkpoints/"')
    assert not _dead("path_prefix:check*")


def test_filename_with_slash_is_dead() -> None:
    """A file name never contains '/'."""
    assert _dead('path_filename:"ckpt/model"')


def test_path_with_leading_or_trailing_slash_is_dead() -> None:
    """Paths are relative to the repo root and name files."""
    assert _dead('path:"/config.json"')
    assert _dead('path:"ckpt/"')


def test_contradictory_conjunction_is_dead() -> None:
    """One field cannot hold two values, and a path fixes the other fields."""
    assert _dead('path_extension:"bin" AND path_extension:"pt"')
    assert _dead('path:"config.json" AND path_extension:"bin"')
    assert _dead('path:"config.json" AND _exists_:path_prefix')
    assert not _dead('path:"a/config.json" AND _exists_:path_prefix AND path_extension:"json"')


def test_term_without_field_is_dead_only_if_dead_for_every_field() -> None:
    """A bare "setup.py" can still be a path or a file name."""
    assert not _dead('"setup.py"')


def test_lowercase_or_warns_historical_rule() -> None:
    """The historical upstream rule used lowercase `or`, a search term for Elasticsearch."""
    findings = lint_query('path_extension:"ckpt" or path:"config.json"', "bionemo")
    assert not has_dead(findings)
    (warning,) = findings
    assert warning.severity == "warning"
    assert warning.clause == "or"
    assert warning.position == 22
    assert "write OR" in warning.why


def test_uppercase_operators_do_not_warn() -> None:
    """The fixed rule is clean."""
    assert lint_query('path_extension:"ckpt" OR path:"config.json"') == []


def test_unparenthesised_and_or_mix_warns() -> None:
    """a OR b AND c is read with boolean precedence here, differently by Elasticsearch."""
    (why,) = _warnings('path:"a" OR path:"b" AND path_prefix:"x/"')
    assert 'path:"a" OR (path:"b" AND path_prefix:"x/")' in why


def test_implicit_or_mixed_with_and_warns() -> None:
    """An implicit OR beside AND is the same trap."""
    assert _warnings('path:"a" path:"b" AND path_prefix:"x/"')


def test_parenthesised_mix_does_not_warn() -> None:
    """Parentheses make the meaning explicit for both readers."""
    assert not _warnings('path:"a" OR (path:"b" AND path_prefix:"x/")')


def test_not_under_or_warns() -> None:
    """Elasticsearch reads a OR NOT b as a AND NOT b."""
    assert _warnings('path:"a" OR NOT path:"b"')


def test_filter_dead_clause_has_json_position() -> None:
    """Filters are linted too; the finding gives the JSON position."""
    (finding,) = lint_filter({"bool": {"should": [{"term": {"path_extension": ".bin"}}]}}, "x")
    assert finding.severity == "dead"
    assert finding.position == "bool.should[0].term"


def test_filter_impossible_minimum_should_match_is_dead() -> None:
    """Asking for more should matches than clauses matches nothing."""
    findings = lint_filter(
        {"bool": {"should": [{"term": {"path": "a"}}], "minimum_should_match": 2}}
    )
    assert has_dead(findings)


def test_shipped_special_filter_is_clean() -> None:
    """The diffusers filter has nothing dead."""
    assert lint_filter(read_shipped_json()["special_filters"]["diffusers"]) == []


def test_operator_rules_are_linted(tmp_path) -> None:
    """Rules from an operator file are linted with their origin."""
    file = tmp_path / "rules.yaml"
    file.write_text("libraries:\n  mine:\n    countDownloads: 'path_prefix:\"ckpt\"'\n")
    findings = [f for f in lint_registry(load_registry(file)) if f.library == "mine"]
    assert [f.severity for f in findings] == ["dead"]
    assert findings[0].origin == f"operator file {str(file)!r}"


def test_operator_fix_removes_a_shipped_dead_clause(tmp_path) -> None:
    """Lint judges the rules in effect: an operator override replaces a dead shipped rule."""
    file = tmp_path / "rules.yaml"
    file.write_text("libraries:\n  ssr-speech:\n    countDownloads: 'path_extension:\"pth\"'\n")
    libraries = {f.library for f in lint_registry(load_registry(file)) if f.severity == "dead"}
    assert libraries == {"quantumpeer"}
