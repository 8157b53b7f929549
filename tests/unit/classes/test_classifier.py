"""The traffic classes and clients the shipped rules decide, and how a bad file fails."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from stream.classes import AGENT_CHARS, NO_CLASS, NO_CLIENT, load_classifier
from stream.classes.classifier import lint, parse
from stream.classes.commands import classes
from stream.errors import ConfigError

pytestmark = pytest.mark.unit

HUB = "huggingface_hub/0.27.1; python/3.12.7; torch/2.4.1"


@pytest.fixture(scope="module")
def shipped():
    return load_classifier()


@pytest.mark.parametrize(("agent", "klass", "client"), [
    # CI runners are marked by a token, whatever library they run
    (f"{HUB}; transformers/4.46.3; ci/github-actions", "ci", "transformers"),
    (f"{HUB}; ci/true", "ci", "huggingface_hub"),
    ('pip/24.0 {"ci":true,"python":"3.12.1"}', "ci", NO_CLIENT),
    ("GitLab-Runner 16.11.0", "ci", NO_CLIENT),
    # ci/false is no CI marker
    (f"{HUB}; ci/false", NO_CLASS, "huggingface_hub"),
    # a crawler is a bot even though it starts like a browser
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot", "browser"),
    ("Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0.0.0 Safari/537.36", "bot", "browser"),
    ("aria2/1.37.0", "mirror", "aria2"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "browser", "browser"),
    # libraries before huggingface_hub, sentence-transformers before transformers
    (f"{HUB}; sentence_transformers/3.3.1; transformers/4.46.3", NO_CLASS, "sentence-transformers"),
    (f"{HUB}; diffusers/0.31.0", NO_CLASS, "diffusers"),
    (f"datasets/3.1.0; {HUB}", NO_CLASS, "datasets"),
    (HUB, NO_CLASS, "huggingface_hub"),
    ("llama-cpp", NO_CLASS, "llama.cpp"),
    ("ollama/0.4.7", NO_CLASS, "ollama"),
    ("git/2.43.0", NO_CLASS, "git"),
    ("git-lfs/3.5.1 (GitHub; linux amd64; go 1.21.8)", NO_CLASS, "git-lfs"),
    ("curl/8.5.0", NO_CLASS, "curl"),
    ("Wget/1.21.4", NO_CLASS, "wget"),
    ("", NO_CLASS, NO_CLIENT),
    (None, NO_CLASS, NO_CLIENT),
])
def test_shipped_rules_decide_class_and_client(shipped, agent, klass, client):
    assert shipped.classify(agent) == (klass, client)


def test_the_shipped_examples_all_hold(shipped):
    # The file's own examples are its contract: lint checks every one.
    assert lint(shipped) == []


def test_classify_remembers_and_matches_explain(shipped):
    # The hot path asks the cache; it must answer what explain decides.
    agent = f"{HUB}; peft/0.14.0"
    assert shipped.classify(agent) == shipped.classify(agent)
    decision = shipped.explain(agent)
    assert (decision.traffic_class, decision.client) == shipped.classify(agent) == (NO_CLASS, "peft")
    assert decision.client_pattern == r"\bpeft/"


def test_only_the_start_of_a_long_user_agent_decides(shipped):
    # A hostile user agent many KiB long costs what a real one does: only its first
    # AGENT_CHARS characters are searched, by the worker and by the reference alike.
    from stream.reference.analytics import _Classes

    padded = f"{HUB}; transformers/4.46.3; " + "x" * AGENT_CHARS
    for agent in (padded + "; ci/true", padded + "; ci/true" + "y" * 60_000):
        assert shipped.classify(agent) == shipped.classify(padded) == (NO_CLASS, "transformers")
        assert _Classes().of(agent) == (NO_CLASS, "transformers")
    assert shipped.classify(f"{HUB}; ci/true; " + "x" * 60_000) == ("ci", "huggingface_hub")


_MINIMAL = """
classes:
  - name: bot
    patterns: ['bot']
clients:
  - name: curl
    patterns: ['^curl/']
"""


@pytest.mark.parametrize(("text", "message"), [
    ("classes: [", "not YAML"),
    ("classes: []", "clients: Field required"),
    (_MINIMAL.replace("name: bot", "name: robots"), "'robots' is not one of ci, bot, mirror, browser"),
    (_MINIMAL.replace("name: bot", "name: other"), "'other' is not one of"),
    (_MINIMAL.replace("['bot']", "['bot', '(unclosed']"), "classes[0] 'bot' pattern 1 '(unclosed'"),
    (_MINIMAL.replace("['bot']", "['.*']"), "matches every user agent"),
    (_MINIMAL.replace("name: curl", "name: unknown"), "'unknown' is what matches no client"),
    (_MINIMAL + "  - name: curl\n    patterns: ['x']\n", "clients[1] 'curl' appears twice"),
    (_MINIMAL.replace("patterns: ['^curl/']", "patterns: ['^curl/']\n    extra: 1"), "Extra inputs"),
])
def test_a_bad_file_fails_at_load_naming_the_entry(text, message):
    with pytest.raises(ConfigError, match=r"^operator\.yaml: ") as caught:
        parse(text, "operator.yaml")
    assert message in str(caught.value)


def test_lint_reports_an_example_decided_otherwise():
    classifier = parse(_MINIMAL.replace("['^curl/']", "['^curl/']\n    examples: ['Wget/1.0']"), "f")
    assert lint(classifier) == ["clients 'curl': example 'Wget/1.0' is decided 'unknown'"]


def test_cli_explains_with_an_operator_file(tmp_path):
    # An operator file replaces the shipped one entirely.
    path = tmp_path / "classes.yaml"
    path.write_text(_MINIMAL)
    result = CliRunner().invoke(classes, ["explain", "--classes", str(path), "curlbot/1"])
    assert result.exit_code == 0, result.output
    assert "class  bot" in result.output and "client unknown" in result.output
    assert CliRunner().invoke(classes, ["lint", "--classes", str(path)]).exit_code == 0
    path.write_text("classes: {")
    broken = CliRunner().invoke(classes, ["lint", "--classes", str(path)])
    assert broken.exit_code == 2 and "not YAML" in broken.output
