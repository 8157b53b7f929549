"""The `hubcounter rules` commands."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from stream.rules.commands import rules

pytestmark = pytest.mark.unit


def _run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(rules, list(args), env=env)


def test_explain_prints_verdict_and_clause() -> None:
    """explain gives a line per path with the deciding clause."""
    result = _run("explain", "--library", "open_clip", "open_clip_model.safetensors", "config.json")
    assert result.exit_code == 0
    first, second = result.output.splitlines()
    assert first.startswith("counts") and 'open_clip: path:"open_clip_model.safetensors"' in first
    assert second.startswith("no") and "config.json" in second


def test_explain_json() -> None:
    """--json is machine-readable, one object per path."""
    result = _run("explain", "--json", "--type", "space", "config.json")
    (item,) = json.loads(result.output)
    assert item["counts"] is False and item["repo_type"] == "space"


def test_lint_fails_on_shipped_dead_clauses() -> None:
    """lint exits non-zero and names both dead clauses of the shipped data."""
    result = _run("lint")
    assert result.exit_code == 1
    assert 'ssr-speech: dead clause at 0: path_extension:".pth"' in result.output
    assert 'quantumpeer: dead clause at 0: path_extension:"setup.py"' in result.output


def test_lint_warn_only_exits_zero() -> None:
    """--warn-only reports without failing."""
    result = _run("lint", "--warn-only")
    assert result.exit_code == 0
    assert "2 dead clause(s)" in result.output


def test_rules_file_from_environment(tmp_path) -> None:
    """HUBCOUNTER_RULES is read by the CLI (click's envvar), not at import."""
    file = tmp_path / "r.yaml"
    file.write_text("libraries:\n  mine:\n    countDownloads: 'path:\"w.bin\"'\n")
    result = _run("explain", "--library", "mine", "w.bin", env={"HUBCOUNTER_RULES": str(file)})
    assert result.exit_code == 0
    assert 'mine: path:"w.bin"' in result.output


def test_bad_rules_file_exits_2_with_message(tmp_path) -> None:
    """A broken operator file is an error naming file and library, exit code 2."""
    file = tmp_path / "r.yaml"
    file.write_text("libraries:\n  mine:\n    countDownloads: 'path:[a TO b]'\n")
    result = _run("lint", "--rules", str(file))
    assert result.exit_code == 2
    assert "library 'mine', position 5" in result.output
    assert str(file) in result.output
