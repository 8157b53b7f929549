"""The diff report of a recount: what applying it would change, before anything changes.

Per library (its rule before and after, downloads before and after, the files whose
downloads change, the downloads counted more than once within one load), per repo
(biggest changes first) and per day. *Before* is what the live counters hold now; *after*
is what they will hold once the recount is applied (before plus the recount's change:
the new rules' downloads minus the old rules' over the events before the fences).
Rendered as JSON (everything), CSV (one row per repo and day, and per repo in total) or
a table for people.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson

from stream.recount.changes import Change
from stream.recount.judge import Judge
from stream.recount.plan import Plan
from stream.store import keys
from stream.store.connect import RedisClient
from stream.store.scripts import run

FORMATS = ("table", "json", "csv")
_FILES_SHOWN = 12


async def live_counts(client: RedisClient, shards: int, found: Sequence[Change]) -> dict[str, dict[str, int]]:
    """What the live counters hold of the changed repos: repo -> {day or "all": downloads}."""
    days: dict[str, list[str]] = defaultdict(list)
    for change in found:
        days[change.repo].append(change.day)
    repos = sorted(days)
    commands = [("HMGET", keys.repo(keys.shard_of(repo, shards), repo), keys.ALL_TIME_FIELD, *days[repo])
                for repo in repos]
    out: dict[str, dict[str, int]] = {}
    for begin in range(0, len(commands), 2000):
        replies = await run(client, commands[begin:begin + 2000], ())
        for repo, values in zip(repos[begin:begin + 2000], replies, strict=True):
            names = [keys.ALL_TIME_FIELD, *days[repo]]
            out[repo] = {name: int(v) if v is not None else 0 for name, v in zip(names, values, strict=True)}
    return out


def _rule_text(source: Any) -> str:
    return source if isinstance(source, str) else orjson.dumps(source).decode()


def _rules(plan: Plan, used: set[str], library: str | None) -> dict[str, Any]:
    before = sorted({_rule_text(rules.rule_for(library).source) for version, rules in plan.old_rules.items()
                     if version in used})
    after = _rule_text(plan.new_rules.rule_for(library).source)
    return {"before": before[0] if len(before) == 1 else before, "after": after}


def build(recount_id: str, plan: Plan, judge: Judge, found: Sequence[Change], live: dict[str, dict[str, int]],
          meta: dict[str, Any]) -> dict[str, Any]:
    """The report as a JSON-ready mapping (see the module docstring)."""
    repos: dict[str, dict[str, Any]] = {}
    for change in found:
        held = live.get(change.repo, {})
        entry = repos.setdefault(change.repo, {
            "repo": change.repo, "library": change.library, "before": held.get(keys.ALL_TIME_FIELD, 0),
            "change": 0, "recountedOld": 0, "recountedNew": 0, "daily": []})
        before = held.get(change.day, 0)
        entry["daily"].append({"date": change.day, "before": before, "after": before + change.delta,
                               "change": change.delta})
        entry["change"] += change.delta
        entry["recountedOld"] += change.old
        entry["recountedNew"] += change.new
    ranked = sorted(repos.values(), key=lambda r: (-abs(r["change"]), r["repo"]))
    for entry in ranked:
        entry["after"] = entry["before"] + entry["change"]
    libraries = []
    names = {change.library for change in found} | (set() if plan.everything else set(plan.libraries))
    for library in sorted(names, key=lambda n: (n is None, n or "")):
        mine = [r for r in ranked if r["library"] == library]
        figures = judge.libraries.get(library)
        files = sorted(((path, c) for path, c in (figures.files.items() if figures else ()) if c[0] != c[1]),
                       key=lambda item: (-abs(item[1][1] - item[1][0]), item[0]))
        libraries.append({
            "library": library, "rule": _rules(plan, set(judge.used), library), "repos": len(mine),
            "before": sum(r["before"] for r in mine), "after": sum(r["after"] for r in mine),
            "change": sum(r["change"] for r in mine),
            "files": [{"path": p, "before": c[0], "after": c[1]} for p, c in files[:_FILES_SHOWN]],
            "repeatsWithinALoad": figures.repeats() if figures else {},
        })
    applicable, why = plan.applicable
    return {
        "id": recount_id, **meta, "applicable": applicable, "why": why,
        "judgedBy": {plan.old[v].label: n for v, n in sorted(judge.used.items())},
        "events": dict(sorted(judge.outcomes.items())),
        "totals": {"repos": len(ranked), "repoDays": len(found), "before": sum(r["before"] for r in ranked),
                   "after": sum(r["after"] for r in ranked), "change": sum(r["change"] for r in ranked)},
        "libraries": libraries, "repos": ranked,
    }


def render(report: dict[str, Any], fmt: str, top: int = 20) -> str:
    """The report as text: ``json``, ``csv`` or ``table`` (the ``top`` repos)."""
    if fmt == "json":
        return orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(("library", "repo", "date", "before", "after", "change"))
        for repo in report["repos"]:
            for day in repo["daily"]:
                writer.writerow((repo["library"] or "", repo["repo"], day["date"], day["before"], day["after"],
                                 day["change"]))
            writer.writerow((repo["library"] or "", repo["repo"], "all", repo["before"], repo["after"], repo["change"]))
        return out.getvalue()
    return _table(report, top)


def _table(report: dict[str, Any], top: int) -> str:
    was = ", ".join(report["judgedBy"]) or "nothing to judge"
    lines = [f"recount {report['id']}: rules {report['new']['label']} (was {was}), "
             f"{report['period']['from']} to {report['period']['to']}, from {report['source']}",
             f"{'can' if report['applicable'] else 'cannot'} be applied: {report['why']}",
             "events: " + ", ".join(f"{k} {v:,}" for k, v in report["events"].items()), ""]
    totals = report["totals"]
    lines.append(f"{totals['repos']:,} repos change: {totals['before']:,} -> {totals['after']:,} downloads "
                 f"({totals['change']:+,})")
    for lib in report["libraries"]:
        name = lib["library"] or "(no library: default files)"
        lines += ["", f"library {name}: {lib['repos']:,} repos, {lib['before']:,} -> {lib['after']:,} "
                      f"({lib['change']:+,})",
                  f"  rule before: {lib['rule']['before']}", f"  rule after:  {lib['rule']['after']}"]
        for entry in lib["files"]:
            lines.append(f"  file {entry['path']}: {entry['before']:,} -> {entry['after']:,} "
                         f"({entry['after'] - entry['before']:+,})")
        repeats = lib["repeatsWithinALoad"]
        if repeats:
            lines.append(f"  counted more than once within one load: {repeats['before']:,} -> {repeats['after']:,} "
                         f"(config files among them: {repeats['configBefore']:,} -> {repeats['configAfter']:,})")
    lines += ["", f"{'repo':<60} {'before':>10} {'after':>10} {'change':>9}"]
    for repo in report["repos"][:top]:
        lines.append(f"{repo['repo']:<60} {repo['before']:>10,} {repo['after']:>10,} {repo['change']:>+9,}")
    if len(report["repos"]) > top:
        lines.append(f"... and {len(report['repos']) - top:,} more repos (--top, or --format json|csv)")
    biggest = report["repos"][:3]
    for repo in biggest:
        days = ", ".join(f"{d['date']} {d['before']}->{d['after']}" for d in repo["daily"][:10])
        more = f" (+{len(repo['daily']) - 10} days)" if len(repo["daily"]) > 10 else ""
        lines.append(f"  {repo['repo']}: {days}{more}")
    return "\n".join(lines) + "\n"
