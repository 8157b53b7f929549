"""The query-string compiler: examples for each construct, and its errors."""

from __future__ import annotations

import pytest

from stream.errors import RuleError
from stream.rules import compile_query

pytestmark = pytest.mark.unit

OPEN_CLIP_OLD = 'path_extension:"bin" AND path_filename:*pytorch_model'
OPEN_CLIP_NEW = (
    'path:"open_clip_model.safetensors" OR path:"model.safetensors" '
    'OR path:"open_clip_pytorch_model.bin" OR path:"pytorch_model.bin"'
)


def test_open_clip_file_counts_under_old_and_new_rule() -> None:
    """open_clip_pytorch_model.bin is what both versions of the open_clip rule meant."""
    assert compile_query(OPEN_CLIP_OLD)("open_clip_pytorch_model.bin")
    assert compile_query(OPEN_CLIP_NEW)("open_clip_pytorch_model.bin")


def test_nested_pytorch_model_counts_only_under_old_open_clip_rule() -> None:
    """The fix narrowed open_clip to root files: a nested .bin no longer counts."""
    assert compile_query(OPEN_CLIP_OLD)("foo/pytorch_model.bin")
    assert not compile_query(OPEN_CLIP_NEW)("foo/pytorch_model.bin")


def test_new_open_clip_rule_counts_safetensors() -> None:
    """The fix added safetensors files, which the old rule never counted."""
    assert compile_query(OPEN_CLIP_NEW)("open_clip_model.safetensors")
    assert not compile_query(OPEN_CLIP_OLD)("open_clip_model.safetensors")


def test_quoted_term_is_exact_and_case_sensitive() -> None:
    """Keyword fields compare exactly: no case folding, no partial match."""
    rule = compile_query('path:"config.json"')
    assert rule("config.json")
    assert not rule("Config.json")
    assert not rule("sub/config.json")
    assert not rule("config.json.bak")


def test_unquoted_term_is_exact_too() -> None:
    """field:term without wildcards is the same exact match as the quoted form."""
    assert compile_query("path_extension:bin")("a.bin")
    assert not compile_query("path_extension:bin")("a.binx")


def test_wildcards_inside_quotes_are_literal() -> None:
    """Elasticsearch does not expand * and ? inside a quoted phrase."""
    rule = compile_query('path:"*.bin"')
    assert rule("*.bin")
    assert not rule("model.bin")


def test_star_crosses_slashes() -> None:
    """`*` matches any run of characters, '/' included, like Elasticsearch's wildcard."""
    rule = compile_query("path:*pytorch_model.bin")
    assert rule("a/b/pytorch_model.bin")


def test_question_mark_matches_one_character() -> None:
    """`?` is exactly one character."""
    rule = compile_query("path:model-0000?-of-00004.safetensors")
    assert rule("model-00001-of-00004.safetensors")
    assert not rule("model-000012-of-00004.safetensors")


def test_escaped_star_is_literal() -> None:
    """A backslash makes a wildcard character literal in an unquoted term."""
    rule = compile_query(r"path:a\*b")
    assert rule("a*b")
    assert not rule("axxb")


def test_term_without_field_matches_any_field() -> None:
    """A bare term matches when any of the four fields equals it."""
    rule = compile_query("config")
    assert rule("config")  # path / filename
    assert rule("sub/config.json")  # filename
    assert rule("x/y.config")  # extension
    assert not rule("configs.json")


def test_field_group() -> None:
    """field:(a OR b) applies the field to each term of the group."""
    rule = compile_query("path_extension:(bin OR pt)")
    assert rule("a.bin")
    assert rule("b/c.pt")
    assert not rule("a.pth")


def test_field_group_with_implicit_or() -> None:
    """Inside a group, clauses side by side are OR'ed too."""
    rule = compile_query('path_extension:(bin "pt")')
    assert rule("a.pt")
    assert rule("a.bin")


def test_exists_with_bare_and_quoted_field_name() -> None:
    """_exists_ takes the field name bare or, as in the whisperkit rule, quoted."""
    for query in ("_exists_:path_prefix", '_exists_:"path_prefix"'):
        rule = compile_query(query)
        assert rule("a/model.mil")
        assert not rule("model.mil")


def test_implicit_operator_is_or() -> None:
    """Clauses side by side are OR'ed (Elasticsearch's default_operator)."""
    rule = compile_query('path:"a.json" path:"b.json"')
    assert rule("a.json")
    assert rule("b.json")


def test_not_binds_tighter_than_and() -> None:
    """NOT a AND b is (NOT a) AND b."""
    rule = compile_query('NOT path_extension:"bin" AND path_prefix:"x/"')
    assert rule("x/a.pt")
    assert not rule("x/a.bin")
    assert not rule("a.pt")


def test_and_binds_tighter_than_or() -> None:
    """a OR b AND c is a OR (b AND c), plain boolean precedence."""
    rule = compile_query('path:"a" OR path_extension:"bin" AND path_prefix:"x/"')
    assert rule("a")
    assert rule("x/m.bin")
    assert not rule("m.bin")


def test_implicit_or_binds_loosest() -> None:
    """a b AND c is a OR (b AND c): the implicit operator is an OR."""
    rule = compile_query('path:"a" path_extension:"bin" AND path_prefix:"x/"')
    assert rule("a")
    assert not rule("m.bin")


def test_whitespace_and_newlines_anywhere() -> None:
    """Rules are often written over several lines."""
    rule = compile_query('\n  path:"a.json"\n\tOR\n  path_extension : "bin" \n'.replace(" : ", ":"))
    assert rule("a.json")
    assert rule("x.bin")


def test_parentheses_override_precedence() -> None:
    """(a OR b) AND c needs c."""
    rule = compile_query('(path:"a.bin" OR path:"b.bin") AND path_prefix:"x/"')
    assert not rule("a.bin")


# --- errors --------------------------------------------------------------------------


def _error(query: str) -> RuleError:
    with pytest.raises(RuleError) as info:
        compile_query(query, library="mylib")
    return info.value


def test_unknown_field_names_library_and_position() -> None:
    """A typo in a field name is caught at load time, where it is."""
    err = _error('path:"a" OR path_extention:"bin"')
    assert err.library == "mylib"
    assert err.position == 12
    assert "library 'mylib', position 12" in str(err)
    assert "unknown field 'path_extention'" in str(err)


def test_syntax_error_names_library_and_position() -> None:
    """A dangling operator is a syntax error, with the position of the problem."""
    err = _error('path:"a" AND')
    assert err.library == "mylib"
    assert err.position == len('path:"a" AND')
    assert "syntax error" in str(err)


def test_unbalanced_quote_is_an_error() -> None:
    """An unterminated phrase cannot be lexed: error at the quote."""
    err = _error('path:"config.json')
    assert err.position == 5
    assert "library 'mylib', position 5" in str(err)


@pytest.mark.parametrize(
    ("query", "position", "words"),
    [
        ("path:[a TO b]", 5, "range"),
        ("path:foo~2", 5, "fuzzy"),
        ("path:foo^2", 5, "boost"),
        ('path:"a b"~2', 5, "proximity"),
        ("path:/mod.*/", 5, "regular expressions"),
        ('path:"a" +path:"b"', 9, "'+'"),
        ('path:"a" -path:"b"', 9, "'-'"),
        ('path:"a" && path:"b"', 9, "'&&'"),
        ("path:>a", 5, "range"),
    ],
)
def test_unsupported_constructs_are_errors(query: str, position: int, words: str) -> None:
    """Constructs outside the supported subset fail loudly instead of matching oddly."""
    err = _error(query)
    assert err.library == "mylib"
    assert err.position == position
    assert words in str(err)


def test_exists_of_unknown_field_is_an_error() -> None:
    """_exists_ checks its field name like any other field reference."""
    err = _error("_exists_:path_suffix")
    assert "unknown field 'path_suffix'" in str(err)
    assert err.position == 0


def test_nested_field_in_group_is_an_error() -> None:
    """path:(path_prefix:x) has no meaning: refuse it."""
    err = _error("path:(path_prefix:x)")
    assert err.position == 6


def test_empty_query_is_an_error() -> None:
    """An empty rule would silently count nothing; say so instead."""
    assert "empty query" in str(_error("   "))


def test_error_without_library() -> None:
    """An ad-hoc query has no library: the message gives the position only."""
    with pytest.raises(RuleError, match=r"^position 0: unknown field"):
        compile_query("nope:x")
