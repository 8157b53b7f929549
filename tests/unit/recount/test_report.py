"""The diff report's shapes: what an operator reads before applying a recount."""

from __future__ import annotations

import csv
import io

import orjson
import pytest

from stream.recount.report import render

pytestmark = pytest.mark.unit

REPORT = {
    "id": "rc-1", "new": {"version": "n", "label": "after (n)"}, "judgedBy": {"before (o)": 10},
    "period": {"from": "2026-11-01", "to": "2026-11-02"}, "source": "kafka", "applicable": True, "why": "switched",
    "events": {"judged": 10}, "totals": {"repos": 2, "repoDays": 3, "before": 10, "after": 13, "change": 3},
    "libraries": [{"library": "open_clip", "rule": {"before": "old rule", "after": "new rule"}, "repos": 2,
                   "before": 10, "after": 13, "change": 3,
                   "files": [{"path": "open_clip_model.safetensors", "before": 0, "after": 5}],
                   "repeatsWithinALoad": {"before": 0, "after": 2, "configBefore": 0, "configAfter": 0}}],
    "repos": [
        {"repo": "model:org/a", "library": "open_clip", "before": 4, "after": 9, "change": 5,
         "daily": [{"date": "2026-11-01", "before": 1, "after": 4, "change": 3},
                   {"date": "2026-11-02", "before": 1, "after": 3, "change": 2}]},
        {"repo": "model:org/b", "library": "open_clip", "before": 6, "after": 4, "change": -2,
         "daily": [{"date": "2026-11-01", "before": 3, "after": 1, "change": -2}]}],
}


def test_the_table_shows_rules_files_and_the_biggest_changes_first() -> None:
    text = render(REPORT, "table", top=1)
    assert "rule before: old rule" in text and "rule after:  new rule" in text
    assert "file open_clip_model.safetensors: 0 -> 5 (+5)" in text
    assert text.index("model:org/a") < text.index("... and 1 more repos")
    assert "2026-11-01 1->4" in text


def test_csv_has_a_row_per_repo_day_and_a_total_per_repo() -> None:
    rows = list(csv.reader(io.StringIO(render(REPORT, "csv"))))
    assert rows[0] == ["library", "repo", "date", "before", "after", "change"]
    assert ["open_clip", "model:org/a", "all", "4", "9", "5"] in rows and len(rows) == 1 + 3 + 2


def test_json_is_the_whole_report() -> None:
    assert orjson.loads(render(REPORT, "json")) == REPORT
