"""The registry: which rule judges which repo, GGUF, defaults, repo types, operator files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stream.errors import ConfigError, RuleError
from stream.rules import Registry, compile_filter, compile_query, load_registry
from stream.rules.sources import read_shipped_json

pytestmark = pytest.mark.unit

DATA = read_shipped_json()


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


def test_every_shipped_library_is_known(registry: Registry) -> None:
    """All 240 libraries of the data file are loaded, with or without a rule."""
    assert set(registry.library_names()) == set(DATA["libraries"])
    assert len(registry.library_names()) == 240


def test_every_shipped_query_compiles(registry: Registry) -> None:
    """The 179 countDownloads queries all compile into their own rule."""
    with_query = {n for n, e in DATA["libraries"].items() if e["countDownloads"]}
    assert len(with_query) == 179
    assert all(not registry.uses_default(name) for name in with_query)
    assert all(
        registry.rule_for(name).source == DATA["libraries"][name]["countDownloads"]
        for name in with_query
    )


def test_library_with_query_uses_it(registry: Registry) -> None:
    """open_clip's rule: its four root files count, config.json does not."""
    assert registry.counts("open_clip", "open_clip_model.safetensors")
    assert registry.counts("open_clip", "pytorch_model.bin")
    assert not registry.counts("open_clip", "config.json")
    assert not registry.counts("open_clip", "foo/pytorch_model.bin")


@pytest.mark.parametrize("library", [None, "transformers", "no-such-library"])
def test_default_query_files_at_root(registry: Registry, library: str | None) -> None:
    """No rule, an unknown library or no library: the default files count at the root."""
    for name in DATA["default_query_files"]:
        assert registry.counts(library, name)
    assert registry.uses_default(library)


@pytest.mark.parametrize("library", [None, "transformers", "no-such-library"])
def test_default_query_files_not_nested(registry: Registry, library: str | None) -> None:
    """The default rule is root only: sub/config.json does not count."""
    assert not registry.counts(library, "sub/config.json")
    assert not registry.counts(library, "model.safetensors")


def test_shards_and_tokenizer_do_not_count_by_default(registry: Registry) -> None:
    """Under the default rule only the config-like files are downloads, not the weights."""
    assert not registry.counts("transformers", "model-00001-of-00004.safetensors")
    assert not registry.counts("transformers", "tokenizer.json")


def test_gguf_counts_for_every_library(registry: Registry) -> None:
    """A GGUF file counts whatever the library, nested or not."""
    for library in [None, "unknown", *registry.library_names()]:
        assert registry.counts(library, "llama-3-8b.Q4_K_M.gguf"), library
        assert registry.counts(library, "sub/dir/model-q8_0.gguf"), library


def test_gguf_extension_is_case_sensitive(registry: Registry) -> None:
    """Keyword fields are case-sensitive: .GGUF is not path_extension:"gguf"."""
    assert not registry.counts(None, "MODEL.GGUF")


def test_diffusers_uses_its_special_filter(registry: Registry) -> None:
    """diffusers has no query: its special filter applies, not the default files."""
    assert registry.counts("diffusers", "model_index.json")
    assert registry.counts("diffusers", "diffusion_pytorch_model.safetensors")
    assert not registry.counts("diffusers", "unet/diffusion_pytorch_model.safetensors")
    assert not registry.counts("diffusers", "config.json")
    assert registry.rule_for("diffusers").language == "filter"


def test_peft_adapter_config(registry: Registry) -> None:
    """peft counts its adapter config, not the base model's config."""
    assert registry.counts("peft", "adapter_config.json")
    assert not registry.counts("peft", "config.json")


def test_nemo_files(registry: Registry) -> None:
    """NeMo counts .nemo archives anywhere, and any JSON."""
    assert registry.counts("nemo", "parakeet.nemo")
    assert registry.counts("nemo", "sub/x.nemo")
    assert registry.counts("nemo", "model_config.yaml")
    assert not registry.counts("nemo", "sub/model_config.yaml")


def test_whisperkit_needs_a_prefix(registry: Registry) -> None:
    """whisperkit's _exists_:"path_prefix" limits it to model.mil inside a folder."""
    assert registry.counts("whisperkit", "openai_whisper-tiny/AudioEncoder.mlmodelc/model.mil")
    assert not registry.counts("whisperkit", "model.mil")


def test_files_without_extension_and_hidden_files(registry: Registry) -> None:
    """LICENSE and .gitattributes are never downloads under the default rule."""
    assert not registry.counts(None, "LICENSE")
    assert not registry.counts(None, ".gitattributes")


def test_trailing_dot_has_no_extension(registry: Registry) -> None:
    """'model.' has no extension, so an extension rule does not count it."""
    assert registry.counts("fasttext", "model.bin")
    assert not registry.counts("fasttext", "model.")


def test_datasets_count_every_request(registry: Registry) -> None:
    """Every file request of a dataset is a candidate (dedupe is elsewhere)."""
    assert registry.counts(None, "data/train-00000.parquet", repo_type="dataset")
    assert registry.counts("open_clip", "README.md", repo_type="dataset")


def test_spaces_count_nothing(registry: Registry) -> None:
    """Space repos have no downloads, even for a default or GGUF file."""
    assert not registry.counts(None, "config.json", repo_type="space")
    assert not registry.counts(None, "x.gguf", repo_type="space")


def test_unknown_repo_type_is_refused(registry: Registry) -> None:
    """A typo in the repo type must not silently count or drop requests."""
    with pytest.raises(ValueError, match="unknown repo type 'models'"):
        registry.counts(None, "config.json", repo_type="models")


def test_memo_is_bounded() -> None:
    """The memo is cleared when full, so memory stays bounded on any traffic."""
    small = load_registry(cache_size=10)
    for i in range(25):
        small.counts(None, f"f{i}.json")
    assert small.cache_len <= 10
    assert small.counts(None, "config.json")


def test_memo_gives_the_same_answers(registry: Registry) -> None:
    """Warm (memoised) answers equal cold ones."""
    registry.cache_clear()
    cold = [registry.counts("timm", p) for p in ("model.safetensors", "a/model.safetensors")]
    warm = [registry.counts("timm", p) for p in ("model.safetensors", "a/model.safetensors")]
    assert cold == warm == [True, False]


# --- explain -------------------------------------------------------------------------


def test_explain_names_the_deciding_clause(registry: Registry) -> None:
    """explain shows which OR operand matched."""
    e = registry.explain("open_clip", "open_clip_model.safetensors")
    assert e.counts
    assert e.reason == 'open_clip: path:"open_clip_model.safetensors"'


def test_explain_gguf(registry: Registry) -> None:
    """The always-counted rule decides before the library's."""
    e = registry.explain("open_clip", "x.gguf")
    assert e.counts and e.rule == "gguf (always counted)"


def test_explain_default(registry: Registry) -> None:
    """A library without a rule is explained as the default files, saying why."""
    e = registry.explain("transformers", "config.json")
    assert e.counts
    assert e.rule == "default query files"
    assert e.note == "transformers sets no rule"


def test_explain_failing_conjunction(registry: Registry) -> None:
    """A failed AND names the operand that failed."""
    e = registry.explain("whisperkit", "model.mil")
    assert not e.counts
    assert e.clause == '_exists_:"path_prefix"'


# --- operator files ------------------------------------------------------------------

YAML_RULES = """\
# operator overrides
libraries:
  open_clip:
    countDownloads: 'path_extension:"bin" AND path_filename:*pytorch_model'
  my-new-lib:
    countDownloads: |
      path_extension:"weights"
      OR path:"my_config.json"
  diffusers:
    countDownloads: null
"""

JSON_RULES = {
    "libraries": {
        "timm": {"filter": {"bool": {"should": [{"term": {"path": "weights.pt"}}]}}},
        "other-lib": {"filter": {"filter": [{"wildcard": {"path": "*.onnx"}}]}},
    }
}


def test_yaml_operator_file_overrides_a_library(tmp_path: Path) -> None:
    """An operator can restore an older rule for a library."""
    file = tmp_path / "rules.yaml"
    file.write_text(YAML_RULES)
    registry = load_registry(file)
    assert registry.counts("open_clip", "foo/pytorch_model.bin")
    assert registry.rule_for("open_clip").origin == f"operator file {str(file)!r}"


def test_yaml_operator_file_adds_a_library(tmp_path: Path) -> None:
    """An operator can add a library the Hub data does not know, multi-line query and all."""
    file = tmp_path / "rules.yml"
    file.write_text(YAML_RULES)
    registry = load_registry(file)
    assert registry.is_known("my-new-lib")
    assert registry.counts("my-new-lib", "a/b.weights")
    assert not registry.counts("my-new-lib", "config.json")


def test_operator_null_resets_to_default(tmp_path: Path) -> None:
    """countDownloads: null replaces even a special filter with the default files."""
    file = tmp_path / "rules.yaml"
    file.write_text(YAML_RULES)
    registry = load_registry(file)
    assert registry.uses_default("diffusers")
    assert registry.counts("diffusers", "config.json")
    assert not registry.counts("diffusers", "model_index.json")


def test_json_operator_file_with_filters(tmp_path: Path) -> None:
    """JSON files may use the bool filter form, with or without the bool key."""
    file = tmp_path / "rules.json"
    file.write_text(json.dumps(JSON_RULES))
    registry = load_registry(file)
    assert registry.counts("timm", "weights.pt")
    assert not registry.counts("timm", "model.safetensors")
    assert registry.counts("other-lib", "a/model.onnx")
    # Untouched libraries keep their shipped rule.
    assert registry.counts("open_clip", "open_clip_model.safetensors")


def test_operator_rule_error_names_file_and_library(tmp_path: Path) -> None:
    """A bad query in an operator file names the library, position and file."""
    file = tmp_path / "rules.yaml"
    file.write_text("libraries:\n  mylib:\n    countDownloads: 'pth:\"x\"'\n")
    with pytest.raises(RuleError) as info:
        load_registry(file)
    assert info.value.library == "mylib"
    assert info.value.position == 0
    assert str(file) in str(info.value)


def test_operator_entry_shape_error(tmp_path: Path) -> None:
    """An entry with both forms is ambiguous: refused, naming file and library."""
    file = tmp_path / "rules.yaml"
    file.write_text("libraries:\n  mylib:\n    countDownloads: 'path:x'\n    filter: {}\n")
    with pytest.raises(RuleError, match="library 'mylib'") as info:
        load_registry(file)
    assert str(file) in str(info.value)


def test_operator_bad_filter_names_file_library_position(tmp_path: Path) -> None:
    """A bad filter clause in an operator file gives the JSON position and the file."""
    file = tmp_path / "rules.json"
    file.write_text(
        json.dumps({"libraries": {"mylib": {"filter": {"bool": {"must": [{"range": {}}]}}}}})
    )
    with pytest.raises(RuleError) as info:
        load_registry(file)
    assert "bool.must[0].range" in str(info.value)
    assert "library 'mylib'" in str(info.value)
    assert str(file) in str(info.value)


def test_unreadable_operator_file(tmp_path: Path) -> None:
    """A missing file is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="cannot read operator file"):
        load_registry(tmp_path / "missing.yaml")


def test_unparsable_operator_file(tmp_path: Path) -> None:
    """Broken YAML is a ConfigError naming the file."""
    file = tmp_path / "rules.yaml"
    file.write_text("libraries: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot parse operator file"):
        load_registry(file)


def test_operator_file_without_libraries(tmp_path: Path) -> None:
    """A typo in the top-level key would load no rules: refuse it."""
    file = tmp_path / "rules.yaml"
    file.write_text("libraires: {}\n")
    with pytest.raises(ConfigError, match="unknown top-level key"):
        load_registry(file)


@pytest.mark.parametrize(
    "name", sorted(n for n, e in DATA["libraries"].items() if e["countDownloads"])
)
def test_shipped_query_compiles(name: str) -> None:
    """Each shipped countDownloads query compiles on its own (errors would name it)."""
    assert callable(compile_query(DATA["libraries"][name]["countDownloads"], library=name))


@pytest.mark.parametrize("name", sorted(DATA["historical_examples"]))
def test_historical_examples_compile(name: str) -> None:
    """Historical rules, in either language, compile; all three counted pytorch_model.bin."""
    example = DATA["historical_examples"][name]
    rule = (
        compile_filter(example, name) if isinstance(example, dict) else compile_query(example, name)
    )
    assert rule("pytorch_model.bin")


# --- versions: what a rule change changes --------------------------------------------------


def _with_operator_file(tmp_path, text: str):
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return load_registry(path)


def test_the_version_is_the_content_of_the_rules(tmp_path):
    # The same rules from another file are the same version; a different rule is another.
    shipped = load_registry()
    assert shipped.version == load_registry().version and len(shipped.version) == 12
    same = _with_operator_file(tmp_path, "libraries:\n  open_clip:\n    countDownloads: '"
                               + shipped.rule_for("open_clip").source + "'\n")
    assert same.version == shipped.version
    old_clip = _with_operator_file(tmp_path, "libraries:\n  open_clip:\n    countDownloads: "
                                   "'path_extension:\"bin\" AND path_filename:*pytorch_model'\n")
    assert old_clip.version != shipped.version


def test_changed_libraries_names_what_a_rule_change_touches(tmp_path):
    shipped = load_registry()
    old_clip = _with_operator_file(tmp_path, "libraries:\n  open_clip:\n    countDownloads: "
                                   "'path_extension:\"bin\" AND path_filename:*pytorch_model'\n")
    assert shipped.changed_libraries(old_clip) == (False, frozenset({"open_clip"}))
    assert shipped.changed_libraries(shipped) == (False, frozenset())
    # a new library with a rule of its own changes that library's repos (judged by the default before)
    added = _with_operator_file(tmp_path, "libraries:\n  my-lib:\n    countDownloads: 'path:\"w.bin\"'\n")
    assert shipped.changed_libraries(added) == (False, frozenset({"my-lib"}))
