"""One name rule everywhere: what the worker counts, the API and the CLI can look up.

The worker dead-letters repo names the Hub would not allow (``stream.names``); the
reference applies its own reading of the rule; the API's and the CLI's repo ids go
through the same check. Generated names, good and bad, must be judged alike by all four.
"""

from __future__ import annotations

import click
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.api.errors import BadRequest
from stream.api.validation import parse_repo_id as api_repo_id
from stream.names import valid_part, valid_repo
from stream.options import parse_repo_id as cli_repo_id
from stream.reference import Rejected, read_message

pytestmark = pytest.mark.unit

PARTS = st.text(st.sampled_from("aZ09-_./é "), max_size=8) | st.sampled_from(
    ["a" * 96, "a" * 97, "-a", "a-", ".a", "a.", "a--b", "a..b", "a-.b", "_", "gpt2", "a\n"])
REPOS = st.builds(lambda org, name, bare: name if bare else f"{org}/{name}", PARTS, PARTS, st.booleans())


def reference_accepts(repo: str) -> bool:
    read = read_message(orjson.dumps({"timestamp": 1795255200000, "method": "GET", "status": 200,
                                      "repoType": "model", "repoName": repo, "path": "config.json"}))
    assert not isinstance(read, Rejected) or read.reason == "bad_field", read
    return not isinstance(read, Rejected)


def api_accepts(repo: str) -> bool:
    try:
        api_repo_id(repo, "model")
    except BadRequest:
        return False
    return True


def cli_accepts(repo: str) -> bool:
    try:
        cli_repo_id(f"model:{repo}")
    except click.BadParameter:
        return False
    return True


@settings(max_examples=500, deadline=None)
@given(REPOS)
def test_the_worker_the_reference_the_api_and_the_cli_take_the_same_names(repo: str) -> None:
    expected = valid_repo(repo)
    assert (reference_accepts(repo), api_accepts(repo), cli_accepts(repo)) == (expected,) * 3, repo


@pytest.mark.parametrize(("part", "valid"), [
    ("gpt2", True), ("a-b.c_d", True), ("_x_", True), ("a" * 96, True), ("a" * 97, False), ("", False),
    ("-a", False), ("a-", False), (".a", False), ("a.", False), ("a--b", False), ("a..b", False),
    ("a-.b", True), ("é", False), ("a b", False), ("a/b", False),
])
def test_the_hub_rule_part_by_part(part: str, valid: bool) -> None:
    assert valid_part(part) is valid
