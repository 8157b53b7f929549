"""``hubcounter classes``: explain which traffic class and client a user agent is, and lint the rules.

The classes file comes from ``--classes FILE`` or ``HUBCOUNTER_CLASSES`` (read here, by
click). Exit codes: 0 fine; 1 lint found an example decided otherwise; 2 the file could
not be loaded.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from stream.classes.classifier import Classifier, lint, load_classifier
from stream.errors import ConfigError


class _LoadError(click.ClickException):
    exit_code = 2


def _load(classes_file: str | None) -> Classifier:
    try:
        return load_classifier(classes_file)
    except ConfigError as exc:
        raise _LoadError(str(exc)) from None


_classes_option = click.option(
    "--classes", "classes_file", type=click.Path(dir_okay=False), envvar="HUBCOUNTER_CLASSES",
    show_envvar=True, default=None, help="Classes file (YAML or JSON) that replaces the shipped one.")


@click.group()
def classes() -> None:
    """Inspect the traffic classes and clients decided from user agents."""


@classes.command()
@_classes_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per user agent, in a list.")
@click.argument("user_agents", nargs=-1, required=True)
def explain(classes_file: str | None, as_json: bool, user_agents: tuple[str, ...]) -> None:
    """Say, for each USER_AGENT, its traffic class and client and the patterns that decided them."""
    classifier = _load(classes_file)
    decisions = [(agent, classifier.explain(agent)) for agent in user_agents]
    if as_json:
        click.echo(json.dumps([{"userAgent": agent, **asdict(d)} for agent, d in decisions], indent=2))
        return
    for agent, d in decisions:
        click.echo(agent)
        click.echo(f"  class  {d.traffic_class:<22} {_because(d.class_pattern)}")
        click.echo(f"  client {d.client:<22} {_because(d.client_pattern)}")


def _because(pattern: str | None) -> str:
    return f"pattern {pattern}" if pattern is not None else "(no pattern matched)"


@classes.command(name="lint")
@_classes_option
def lint_command(classes_file: str | None) -> None:
    """Check that every example in the file is decided as the entry that lists it."""
    classifier = _load(classes_file)
    problems = lint(classifier)
    for problem in problems:
        click.echo(problem)
    rules = len(classifier.classes) + len(classifier.clients)
    click.echo(f"{len(problems)} problem(s) in {rules} entries of {classifier.origin}")
    if problems:
        raise SystemExit(1)
