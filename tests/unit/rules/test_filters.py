"""The JSON bool filter compiler: each clause type, bool semantics, and errors."""

from __future__ import annotations

import json

import pytest

from stream.errors import RuleError
from stream.rules import compile_filter
from stream.rules.sources import read_shipped_json

pytestmark = pytest.mark.unit

DATA = read_shipped_json()
DIFFUSERS = DATA["special_filters"]["diffusers"]


def test_diffusers_counts_model_index() -> None:
    """model_index.json is the diffusers pipeline file: it counts."""
    assert compile_filter(DIFFUSERS)("model_index.json")


def test_diffusers_counts_root_weights() -> None:
    """[^/]*\\.safetensors full-matched on path: a root-level weight file counts."""
    rule = compile_filter(DIFFUSERS)
    assert rule("diffusion_pytorch_model.safetensors")
    assert rule("v1-5-pruned.ckpt")
    assert rule("pytorch_model.bin")


def test_diffusers_does_not_count_nested_weights() -> None:
    """The regexp must match the whole path and [^/]* stops at '/': subfolders never count."""
    rule = compile_filter(DIFFUSERS)
    assert not rule("unet/diffusion_pytorch_model.safetensors")
    assert not rule("text_encoder/model.safetensors")
    assert not rule("unet/model_index.json")


def test_diffusers_regexp_is_anchored() -> None:
    """regexp is a full match: a suffix after the extension does not count."""
    assert not compile_filter(DIFFUSERS)("model.safetensors.index.json")


def test_historical_open_clip_json_form() -> None:
    """The older docs' bare bool body with a wildcard counts any path ending so."""
    rule = compile_filter(DATA["historical_examples"]["open_clip (JSON form, older docs)"])
    assert rule("open_clip_pytorch_model.bin")
    assert rule("foo/pytorch_model.bin")
    assert not rule("pytorch_model.bin.index.json")


def test_historical_timm_json_form() -> None:
    """terms matches any of the listed values."""
    rule = compile_filter(DATA["historical_examples"]["timm (JSON form, older docs)"])
    assert rule("pytorch_model.bin")
    assert rule("model.safetensors")
    assert not rule("sub/model.safetensors")


def test_term_long_form() -> None:
    """term accepts {"field": {"value": x}} as well as {"field": x}."""
    rule = compile_filter({"term": {"path_extension": {"value": "nemo"}}})
    assert rule("a/b.nemo")


def test_prefix_clause() -> None:
    """prefix matches values that start with the text."""
    rule = compile_filter({"prefix": {"path": "checkpoints/"}})
    assert rule("checkpoints/x.pt")
    assert not rule("x/checkpoints/x.pt")


def test_exists_clause() -> None:
    """exists is true when the field has a value."""
    rule = compile_filter({"exists": {"field": "path_extension"}})
    assert rule("a.bin")
    assert not rule("LICENSE")


def test_clause_value_may_be_a_single_dict() -> None:
    """A bool key may hold one clause instead of a list."""
    rule = compile_filter({"bool": {"filter": {"term": {"path": "a"}}}})
    assert rule("a")
    assert not rule("b")


def test_should_only_defaults_to_one_match() -> None:
    """Elasticsearch: with only should clauses, one must match."""
    rule = compile_filter({"bool": {"should": [{"term": {"path": "a"}}, {"term": {"path": "b"}}]}})
    assert rule("a")
    assert not rule("c")


def test_should_beside_filter_is_optional() -> None:
    """Elasticsearch: next to must/filter, should clauses are optional (default 0)."""
    rule = compile_filter(
        {
            "bool": {
                "filter": [{"term": {"path_extension": "bin"}}],
                "should": [{"term": {"path": "x.bin"}}],
            }
        }
    )
    assert rule("y.bin")


def test_explicit_minimum_should_match() -> None:
    """minimum_should_match 2 needs two should clauses to hold."""
    rule = compile_filter(
        {
            "bool": {
                "should": [
                    {"term": {"path_extension": "bin"}},
                    {"prefix": {"path": "x/"}},
                    {"term": {"path_filename": "model"}},
                ],
                "minimum_should_match": 2,
            }
        }
    )
    assert rule("x/a.bin")
    assert rule("model.bin")
    assert not rule("a.bin")


def test_percentage_minimum_should_match() -> None:
    """ "67%" of 3 rounds down to 2, as in Elasticsearch."""
    spec = {
        "bool": {
            "should": [
                {"term": {"path": "a"}},
                {"exists": {"field": "path_prefix"}},
                {"prefix": {"path": "x"}},
            ],
            "minimum_should_match": "67%",
        }
    }
    rule = compile_filter(spec)
    assert rule("x/a")
    assert not rule("xa")


def test_must_not_excludes() -> None:
    """must_not removes matches of its clauses."""
    rule = compile_filter(
        {
            "bool": {
                "must": {"term": {"path_extension": "bin"}},
                "must_not": [{"prefix": {"path": "tmp/"}}],
            }
        }
    )
    assert rule("a.bin")
    assert not rule("tmp/a.bin")


def test_empty_bool_matches_everything() -> None:
    """Elasticsearch reads an empty bool as match_all."""
    assert compile_filter({"bool": {}})("anything")


def test_regexp_character_classes() -> None:
    """Lucene \\d works as in Python."""
    rule = compile_filter({"regexp": {"path": r"model-\d{5}-of-\d{5}\.safetensors"}})
    assert rule("model-00001-of-00004.safetensors")
    assert not rule("model-1-of-4.safetensors")


# --- errors --------------------------------------------------------------------------


def _error(spec: object) -> RuleError:
    with pytest.raises(RuleError) as info:
        compile_filter(spec, library="mylib")  # type: ignore[arg-type]
    return info.value


def test_bad_clause_names_library_and_json_position() -> None:
    """An unsupported clause deep in a bool names where it is."""
    spec = json.loads(json.dumps(DIFFUSERS))
    spec["bool"]["should"][2] = {"match": {"path": "x"}}
    err = _error(spec)
    assert err.library == "mylib"
    assert "bool.should[2].match" in str(err)
    assert "unsupported clause 'match'" in str(err)


def test_bad_regexp_names_its_position() -> None:
    """A regexp with a Python-only anchor is refused at bool.should[2].regexp."""
    spec = json.loads(json.dumps(DIFFUSERS))
    spec["bool"]["should"][2] = {"regexp": {"path": "^model$"}}
    err = _error(spec)
    assert "library 'mylib'" in str(err)
    assert "bool.should[2].regexp.path" in str(err)
    assert "anchor" in str(err)


def test_unknown_field_in_filter() -> None:
    """Field names are checked in filters too."""
    err = _error({"filter": [{"term": {"filename": "x"}}]})
    assert "filter[0].term.filename" in str(err)
    assert "unknown field 'filename'" in str(err)


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("a@", "'@'"),
        ("a&b", "'&'"),
        ("~a", "'~'"),
        ("a<1-5>", "'<'"),
        ('"a"', "quoted"),
        ("(?i)a", "'(?'"),
        (r"\bx", r"'\b'"),
        ("a*+", "quantifier"),
        ("[a", "unclosed"),
        ("a(", "invalid regexp"),
    ],
)
def test_regexp_constructs_read_differently_are_refused(pattern: str, words: str) -> None:
    """Lucene and Python disagree on these: refusing beats matching the wrong files."""
    err = _error({"regexp": {"path": pattern}})
    assert words in str(err)
    assert "regexp.path" in str(err)


def test_non_string_value_is_an_error() -> None:
    """Field values are strings; a number is a mistake in a path rule."""
    assert "must be a string" in str(_error({"term": {"path": 3}}))


def test_clause_with_two_keys_is_an_error() -> None:
    """A clause object holds exactly one clause type."""
    assert "one key" in str(_error({"term": {"path": "a"}, "prefix": {"path": "b"}}))


def test_bool_with_unknown_key_is_an_error() -> None:
    """A typo like 'shuold' would silently drop clauses: refuse it."""
    err = _error({"bool": {"shuold": []}})
    assert "bool: unsupported bool key(s) ['shuold']" in str(err)
