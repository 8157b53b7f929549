"""A rules version keeps what built it, so it can be compiled again and give the same version."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.errors import ConfigError
from stream.rules.versions import RulesVersion, load_rules

pytestmark = pytest.mark.unit


def test_a_recorded_version_compiles_back_to_the_same_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("libraries:\n  open_clip:\n    countDownloads: 'path:\"x.bin\"'\n")
    registry, version = load_rules(rules, "fix")
    again = RulesVersion.from_json(version.to_json())
    assert again.registry().version == registry.version == version.version
    assert again.label == f"fix ({version.version})" and again.registry().counts("open_clip", "x.bin")
    assert version.version != load_rules(None)[1].version  # the shipped rules alone differ


def test_a_file_names_its_own_version_over_the_option(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text('{"name": "openclip-fix", "libraries": {}}')
    assert load_rules(rules, "from-option")[1].name == "openclip-fix"
    rules.write_text('{"libraries": {}}')
    assert load_rules(rules, "from-option")[1].name == "from-option"


def test_a_name_that_is_no_string_is_refused(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("name: [1]\nlibraries: {}\n")
    with pytest.raises(ConfigError, match="name"):
        load_rules(rules)
