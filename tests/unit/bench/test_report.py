"""The markdown page: numbers formatted, ratios to the drain, goals judged."""

from __future__ import annotations

import pytest

from bench import report

pytestmark = pytest.mark.unit


def _results() -> dict:
    def entry(median: float, verified: bool = True) -> dict:
        run = {"events": 1000, "first_batch": 100, "seconds": 1.0, "rate": median, "cpu_seconds": 0.5,
               "verified": verified, "load_avg": 0.5}
        return {"events": 1000, "runs": [run], "summary": {"runs": 1, "best": median, "median": median,
                                                           "worst": median}}
    return {
        "meta": {"command": "python -m bench all", "quick": True, "duration_s": 42.0, "load_start": 0.1,
                 "load_end": 0.2, "note": "Provisional", "machine": {"date": "2030-01-01 00:00 UTC", "nproc": 2}},
        "workload": {"events": 1000, "reference_stats": {"counted": 10}},
        "throughput": {"drain": entry(400_000.0), "worker": entry(200_000.0), "faust": entry(4_000.0, False)},
        "latency": {"target_rate": 100_000.0, "achieved_rate": 99_000.0, "p50_ms": 120.0, "p99_ms": 1200.0,
                    "probes_seen": 250},
        "errors": {},
    }


def test_rates_and_ratios_are_formatted_for_people():
    assert report.fmt_rate(123456.7) == "123,457/s"
    assert report.fmt_rate(None) == "—"
    assert report.fmt_ratio(0.5) == "0.50×"
    assert report.fmt_ratio(0.0012) == "0.0012×"  # small ratios keep their digits


def test_table_is_github_markdown():
    assert report.table(["a", "b"], [[1, 2]]) == "| a | b |\n|---|---|\n| 1 | 2 |"


def test_summary_rows_give_ratios_to_the_drain_median():
    rows = {row[0].split(" (")[0]: row for row in report.summary_rows(_results())}
    worker = next(row for title, row in rows.items() if title.startswith("hubcounter worker"))
    assert worker[2] == "0.50×"
    faust = next(row for title, row in rows.items() if title.startswith("faust"))
    assert faust[4].startswith("NO")  # an inexact run must be visible


def test_goals_are_judged_against_the_medians():
    goals = {row[0]: row[3] for row in report.goal_rows(_results())}
    assert goals["Worker events/s per process"] == "met"
    assert goals["Worker rate / raw drain rate"] == "met"
    assert goals["Event-to-counter p99 at 50% of peak"] == "**not met**"


def test_the_page_carries_the_note_command_and_method():
    page = report.render(_results())
    assert page.startswith("# Benchmarks")
    assert "> **Provisional**" in page and "`python -m bench all`" in page and "## Method" in page


def test_latency_shows_the_rate_achieved_not_the_target():
    row = next(row for row in report.summary_rows(_results()) if row[0].startswith("Latency"))
    assert "99,000/s" in row[0] and "100,000/s" not in row[0]


def test_two_runs_make_one_page_with_a_section_each_and_the_method_once():
    kafka, tansu = _results(), _results()
    kafka["meta"]["broker"], tansu["meta"]["broker"] = "Apache Kafka 4.4.0 (one KRaft node)", "Tansu (memory storage)"
    page = report.render_all([kafka, tansu])
    assert page.startswith("# Benchmarks on Apache Kafka 4.4.0")
    assert "\n## Benchmarks on Tansu (memory storage)\n" in page and "\n### Goals\n" in page
    assert page.count("## Method") == 1
