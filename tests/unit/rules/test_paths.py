"""Field splitting: the four fields every rule is written against."""

from __future__ import annotations

import pytest

from stream.rules.paths import fields_dict, split_path

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # The field definitions' own examples.
        (
            "text_encoder/model.safetensors",
            ("text_encoder/model.safetensors", "text_encoder/", "safetensors", "model"),
        ),
        (
            "model.safetensors.index.json",
            ("model.safetensors.index.json", None, "json", "model.safetensors.index"),
        ),
        # Safetensors shards keep the shard numbering in the file name.
        (
            "model-00001-of-00004.safetensors",
            ("model-00001-of-00004.safetensors", None, "safetensors", "model-00001-of-00004"),
        ),
        # Nested directories: the prefix is the whole directory part.
        ("a/b/c/pytorch_model.bin", ("a/b/c/pytorch_model.bin", "a/b/c/", "bin", "pytorch_model")),
        # No dot: no extension, the file name is the whole name.
        ("LICENSE", ("LICENSE", None, None, "LICENSE")),
        # A hidden file's only dot is its first character: no extension.
        (".gitattributes", (".gitattributes", None, None, ".gitattributes")),
        ("sub/.gitattributes", ("sub/.gitattributes", "sub/", None, ".gitattributes")),
        # A trailing dot leaves nothing to be the extension.
        ("model.", ("model.", None, None, "model.")),
        # A hidden file with a further dot does have an extension.
        (".meta-huggingface.json", (".meta-huggingface.json", None, "json", ".meta-huggingface")),
        # An empty file name (a directory path) has no file name at all.
        ("dir/", ("dir/", "dir/", None, None)),
    ],
)
def test_split_path(path: str, expected: tuple) -> None:
    """Each special case of the field definitions gives the documented fields."""
    assert split_path(path) == expected


def test_fields_are_case_sensitive() -> None:
    """Fields are keyword values: case is kept, never folded."""
    assert split_path("Model.SafeTensors")[2] == "SafeTensors"


def test_fields_dict_names_the_fields() -> None:
    """fields_dict labels the tuple for display and JSON."""
    assert fields_dict("a/b.c") == {
        "path": "a/b.c",
        "path_prefix": "a/",
        "path_extension": "c",
        "path_filename": "b",
    }
