"""``hubcounter rules``: explain download decisions and lint the rules.

The operator rules file comes from ``--rules FILE`` or the ``HUBCOUNTER_RULES``
environment variable (read here, by click, and nowhere else).

Exit codes: 0 fine; 1 lint found a dead clause (unless ``--warn-only``); 2 the rules
could not be loaded (bad operator file, rule that does not compile).
"""

from __future__ import annotations

import json

import click

from stream.errors import HubcounterError
from stream.rules.lint import has_dead, lint_registry
from stream.rules.registry import REPO_TYPES, Registry, load_registry


class _LoadError(click.ClickException):
    exit_code = 2


def _load(rules_file: str | None) -> Registry:
    try:
        return load_registry(rules_file)
    except HubcounterError as exc:
        raise _LoadError(str(exc)) from None


_rules_option = click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False),
    envvar="HUBCOUNTER_RULES",
    show_envvar=True,
    default=None,
    help="Operator rules file (YAML or JSON) that overrides or adds libraries.",
)


@click.group()
def rules() -> None:
    """Inspect the download rules: which file requests count as a download."""


@rules.command()
@click.option("--library", "-l", default=None, help="The repo's library (omit: none known).")
@click.option(
    "--type",
    "repo_type",
    type=click.Choice(REPO_TYPES),
    default="model",
    show_default=True,
    help="The repo type.",
)
@_rules_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per path, in a list.")
@click.argument("paths", nargs=-1, required=True)
def explain(
    library: str | None,
    repo_type: str,
    rules_file: str | None,
    as_json: bool,
    paths: tuple[str, ...],
) -> None:
    """Say, for each PATH, whether a request for it counts and which rule decided."""
    registry = _load(rules_file)
    explanations = [registry.explain(library, path, repo_type) for path in paths]
    if as_json:
        click.echo(json.dumps([e.to_dict() for e in explanations], indent=2, ensure_ascii=False))
        return
    width = max(len(p) for p in paths)
    for e in explanations:
        verdict = "counts" if e.counts else "no"
        click.echo(f"{verdict:<7} {e.path:<{width}}  {e.reason}")


@rules.command()
@_rules_option
@click.option("--warn-only", is_flag=True, help="Report dead clauses but exit 0.")
@click.option("--json", "as_json", is_flag=True, help="Findings as a JSON list.")
def lint(rules_file: str | None, warn_only: bool, as_json: bool) -> None:
    """Report clauses that can never match and queries Elasticsearch would read otherwise.

    Lints every rule in effect: shipped, special filters and the operator file's.
    """
    registry = _load(rules_file)
    findings = lint_registry(registry)
    if as_json:
        click.echo(json.dumps([f.to_dict() for f in findings], indent=2, ensure_ascii=False))
    else:
        for finding in findings:
            click.echo(str(finding))
        dead = sum(f.severity == "dead" for f in findings)
        warnings = len(findings) - dead
        checked = len(registry.all_rules())
        source = f" (with {registry.operator_file})" if registry.operator_file else ""
        click.echo(f"{dead} dead clause(s), {warnings} warning(s) in {checked} rules{source}")
    if has_dead(findings) and not warn_only:
        raise SystemExit(1)
