"""The reference's rule evaluator and the worker's compiled rules decide every path alike.

They share no code, so a disagreement is a bug in one of them: checked on every shipped
library with the paths its own rule names (and near misses), on generated paths, on
generated query strings, and on an operator rules file using every construct.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.reference.rules import PathFields, Query, RuleBook, RuleBookError, filter_matches
from stream.rules import compile_filter, compile_query, load_registry
from stream.rules.sources import read_shipped_json

pytestmark = pytest.mark.unit

SHIPPED = read_shipped_json()
REGISTRY = load_registry()
BOOK = RuleBook()
LIBRARIES = [*REGISTRY.library_names(), None, "not-a-library"]

DIRS = ["", "sub/", "checkpoints/", "a/b/", "ckpt/", "unet/", "text_encoder/"]
COMMON = ["x.gguf", "sub/x.gguf", "x.GGUF", "gguf", ".gguf", "model.", "model_index.json", "sd.safetensors",
          "unet/diffusion_pytorch_model.safetensors", "v1.ckpt", "a/v1.ckpt", "pytorch_model.bin", "LICENSE",
          "model.safetensors.index.json", "dir/", "a//b.bin", "/config.json",
          *(d + f for d in DIRS[:3] for f in SHIPPED["default_query_files"])]


def near(literal: str) -> list[str]:
    """Paths that match or nearly match a rule literal, wherever it sits in the path."""
    name = literal.rsplit("/", 1)[-1]
    return [literal, *(d + name for d in DIRS), f"{literal}.bak", f"{literal}/", literal.upper(), f"{literal}x",
            *(f"{d}{stem}.{literal}" for d in DIRS[:3] for stem in ("x", ".h", "a.b"))]


def paths_for(library: str | None) -> list[str]:
    """The common paths, and those near every literal of the library's own query."""
    query = SHIPPED["libraries"].get(library or "", {}).get("countDownloads") or ""
    return COMMON + [path for literal in re.findall(r'"([^"]*)"', query) for path in near(literal)]


def test_every_shipped_library_decides_every_nearby_path_alike():
    # 240 libraries (and no library, and an unknown one), each on the paths its rule names.
    decided = [(library, path, REGISTRY.counts(library, path)) for library in LIBRARIES
               for path in paths_for(library)]
    wrong = [(library, path) for library, path, counts in decided if BOOK.counts(library, path) != counts]
    assert not wrong, wrong[:10]
    assert 0.1 < sum(counts for *_, counts in decided) / len(decided) < 0.9  # both answers are exercised


SEGMENTS = st.sampled_from(["config", "model", "pytorch_model", "adapter_config", "x", "", ".", "..", "a.b",
                            "checkpoints", "model_index", "Q4_K_M", "é", " ", "*", "?", "\\"])
EXTENSIONS = st.sampled_from(["json", "bin", "safetensors", "gguf", "pt", "pth", "ckpt", "nemo", "", "yaml",
                              "onnx", "npz", "tar", "GGUF", "json.bak"])
GENERATED_PATHS = st.builds(
    lambda dirs, stem, dot, ext: "".join(d + "/" for d in dirs) + stem + ("." if dot else "") + ext,
    st.lists(SEGMENTS, max_size=3), SEGMENTS, st.booleans(), EXTENSIONS) | st.text(max_size=12)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(LIBRARIES), GENERATED_PATHS)
def test_generated_paths_are_decided_alike_for_every_library(library: str | None, path: str) -> None:
    assert REGISTRY.counts(library, path) == BOOK.counts(library, path)


# --- generated query strings -----------------------------------------------------------

FIELD = st.sampled_from(["path", "path_prefix", "path_extension", "path_filename"])
VALUE = st.sampled_from(["config.json", "bin", "model", "sub/", "json", "x", "a b", 'q"t', "*", "config"])
WILD = st.sampled_from(["*model*", "*.json", "config.*", "?odel", "mod?l.bin", "*", "sub/*", "a\\*b", "*pytorch_model"])
TERM = st.one_of(
    st.builds(lambda f, v: f'{f}:"{v.replace(chr(34), chr(92) + chr(34))}"', FIELD, VALUE),
    st.builds(lambda f, w: f"{f}:{w}", FIELD, WILD),
    st.builds(lambda f: f"_exists_:{f}", FIELD),
    st.builds(lambda f: f'_exists_:"{f}"', FIELD),
    st.builds(lambda f, a, b: f"{f}:({a} OR {b})", FIELD, st.sampled_from(["bin", "json", "*.bin"]),
              st.sampled_from(["pt", "model", "config"])),
    st.sampled_from(["config", "json", "bin", "model"]),
)
QUERY = st.recursive(TERM, lambda sub: st.one_of(
    sub.map(lambda q: f"NOT {q}" if " " not in q else f"NOT ({q})"),
    st.builds(lambda op, parts: op.join(parts), st.sampled_from([" AND ", " OR ", " ", "\n OR "]),
              st.lists(sub.map(lambda q: f"({q})" if " " in q else q), min_size=2, max_size=3)),
    st.builds(lambda a, b, c: f"{a} OR {b} AND {c}", sub, sub, sub),
), max_leaves=6)
QUERY_PATHS = st.builds(lambda d, n: d + n, st.sampled_from(["", "sub/", "a/sub/", "x/"]),
                        st.sampled_from(["config.json", "model.bin", "model", "pytorch_model.bin", ".json", "model.",
                                         "a b", "a*b", "config", "", "x.pt"]))


@settings(max_examples=400, deadline=None)
@given(QUERY, st.lists(QUERY_PATHS, min_size=1, max_size=5))
def test_generated_queries_are_read_alike(query: str, paths: list[str]) -> None:
    try:
        compiled = compile_query(query)
    except Exception:
        with pytest.raises(RuleBookError):
            Query.parse(query)
        return
    walked = Query.parse(query)
    for path in paths:
        assert compiled(path) == walked.matches(PathFields.of(path)), (query, path)


def test_the_reference_splits_paths_like_the_documented_table():
    # docs/RULES.md's table, row by row.
    rows = {"config.json": (None, "json", "config"),
            "text_encoder/model.safetensors": ("text_encoder/", "safetensors", "model"),
            "model.safetensors.index.json": (None, "json", "model.safetensors.index"),
            "LICENSE": (None, None, "LICENSE"), ".gitattributes": (None, None, ".gitattributes"),
            "model.": (None, None, "model."), "dir/": ("dir/", None, None)}
    for path, (prefix, extension, filename) in rows.items():
        assert PathFields.of(path) == PathFields(path, prefix, extension, filename)


# --- an operator rules file ------------------------------------------------------------

OPERATOR_RULES = {
    "_comment": "every construct of both languages",
    "libraries": {
        "open_clip": {"countDownloads": 'path_extension:"bin" AND path_filename:*pytorch_model'},
        "transformers": {"countDownloads": "path_extension:(safetensors OR bin) AND NOT _exists_:path_prefix"},
        "diffusers": {"countDownloads": None},
        "my-wild": {"countDownloads": 'path:sub/*.json OR path_filename:mod?l OR "x.pt" a\\*b'},
        "my-filter": {"filter": {"bool": {
            "filter": [{"exists": {"field": "path_extension"}}],
            "must_not": {"prefix": {"path": "tmp/"}},
            "should": [{"term": {"path_extension": {"value": "bin", "boost": 2}}},
                       {"terms": {"path_filename": ["config", "model"]}},
                       {"wildcard": {"path": {"wildcard": "sub/*"}}},
                       {"regexp": {"path": "[^/]*\\.(pt|json)"}}],
            "minimum_should_match": "50%"}}},
        "my-bare": {"filter": {"should": [{"regexp": {"path_prefix": {"value": "a[0-9]+/", "flags": "ALL"}}},
                                          {"bool": {"must": {"term": {"path": "model.bin"}}}}],
                               "minimum_should_match": -1}},
        "my-nothing": {"filter": {"bool": {"should": [{"term": {"path": "x"}}], "minimum_should_match": 3}}},
        "my-everything": {"filter": {"bool": {}}},
    },
}
OPERATOR_PATHS = st.builds(lambda d, n: d + n, st.sampled_from(["", "sub/", "tmp/", "a1/", "a12/", "x/"]),
                           st.sampled_from(["config.json", "model.bin", "model", "x.pt", "mod1l", "x", "a*b", "v.gguf",
                                            "model_index.json", "s.safetensors", "pytorch_model.bin"]))


@pytest.fixture(scope="module", params=["json", "yaml"])
def operator_file(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import yaml

    path = tmp_path_factory.mktemp("rules") / f"rules.{request.param}"
    text = json.dumps(OPERATOR_RULES) if request.param == "json" else yaml.safe_dump(OPERATOR_RULES)
    path.write_text(text)
    return path


def test_an_operator_rules_file_is_read_alike(operator_file: Path) -> None:
    registry, book = load_registry(operator_file), RuleBook(operator_file)
    libraries = [*OPERATOR_RULES["libraries"], "peft", None]
    paths = [d + n for d in ["", "sub/", "tmp/", "a1/", "x/"]
             for n in ["config.json", "model.bin", "model", "x.pt", "mod1l", "x", "a*b", "v.gguf", "model_index.json",
                       "s.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"]]
    wrong = [(lib, p) for lib in libraries for p in paths if registry.counts(lib, p) != book.counts(lib, p)]
    assert not wrong, wrong[:10]
    # the file changes decisions, or it proves nothing
    assert book.counts("diffusers", "config.json") and not RuleBook().counts("diffusers", "config.json")
    assert book.counts("my-everything", "anything") and not book.counts("my-nothing", "x")


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(OPERATOR_RULES["libraries"])), OPERATOR_PATHS)
def test_operator_filters_are_walked_like_they_are_compiled(library: str, path: str) -> None:
    rule = OPERATOR_RULES["libraries"][library]
    if "filter" in rule:
        assert compile_filter(rule["filter"])(path) == filter_matches(rule["filter"], PathFields.of(path))
