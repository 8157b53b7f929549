"""Judging history twice: the worker's counting, under the old and the new rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import orjson
import pytest

from stream.recount.changes import changes
from stream.recount.judge import AFTER, AFTER_FENCE, DEAD, JUDGED, OUTSIDE, UNAFFECTED, Judge, Period
from stream.rules.registry import Registry
from stream.rules.sources import RuleSpec, load_shipped

pytestmark = pytest.mark.unit

DAY = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MS = int(DAY.timestamp() * 1000)
OLD_CLIP = 'path_extension:"bin" AND path_filename:*pytorch_model'
LIBRARIES = {"model:org/clip": "open_clip", "model:org/bert": "transformers"}


def registry(open_clip: str | None = None) -> Registry:
    rules = {"open_clip": RuleSpec("open_clip", "query", open_clip, "test")} if open_clip else None
    return Registry(load_shipped(), rules)


def event(path: str, repo: str = "org/clip", ts_ms: int = MS, user: str | None = "u1", method: str = "GET") -> bytes:
    body = {"timestamp": ts_ms, "method": method, "status": 200, "repoType": "model", "repoName": repo,
            "path": path}
    if user is not None:
        body["hashedUserId"] = user
    return orjson.dumps(body)


def judge() -> Judge:
    """New: the shipped rules; old: OpenCLIP's earlier rule; OpenCLIP's repos affected."""
    return Judge(registry(), {"old": registry(OLD_CLIP)}, LIBRARIES.get, lambda library: library == "open_clip",
                 Period(date(2026, 11, 19), date(2026, 11, 21)), timedelta(days=7), None, 64 * 1024)


def same(version: str | None) -> object:
    return lambda repo_key, source, position: version


def test_each_event_is_judged_by_its_old_version_and_by_the_new_rules() -> None:
    # OpenCLIP's old rule counted only *pytorch_model.bin; the new one counts the safetensors too.
    j = judge()
    for path in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin", "open_clip_config.json"):
        j.add(event(path), MS, same("old"), "p", 0)
    assert j.old.plain == {("model:org/clip", "2026-11-20"): 1}
    assert j.new.plain == {("model:org/clip", "2026-11-20"): 2}
    [change] = changes(j.old, j.new, LIBRARIES.get)
    assert (change.old, change.new, change.delta, change.library) == (1, 2, 1, "open_clip")
    assert j.outcomes[JUDGED] == 3 and j.used == {"old": 3}


def test_records_past_the_fence_and_other_libraries_and_days_are_left_alone() -> None:
    j = judge()
    j.add(event("open_clip_model.safetensors"), MS, same(AFTER_FENCE), "p", 9)
    j.add(event("config.json", repo="org/bert"), MS, same("old"), "p", 1)
    j.add(event("open_clip_model.safetensors", ts_ms=MS - 3 * 86_400_000), MS, same("old"), "p", 2)
    j.add(b"{not json", MS, same("old"), "p", 3)
    assert j.outcomes == {AFTER: 1, UNAFFECTED: 1, OUTSIDE: 1, DEAD: 1}
    assert not j.old.plain and not j.new.plain


def test_lateness_is_judged_against_the_clock_the_source_gives() -> None:
    # Counted eight days after it happened: the worker dead-lettered it, and so does the recount.
    j = judge()
    j.add(event("open_clip_model.safetensors"), MS + 8 * 86_400_000, same("old"), "p", 0)
    assert j.outcomes == {DEAD: 1}


def test_archives_judge_lateness_by_the_watermark_of_event_times() -> None:
    j = judge()
    j.add(event("open_clip_model.safetensors", ts_ms=MS + 86_400_000), None, same("old"), "f", 0)
    j.add(event("open_clip_model.safetensors", ts_ms=MS - 86_400_000), None, same("old"), "f", 1)  # within 7 days
    assert j.watermark_ms == MS + 86_400_000 and j.outcomes == {JUDGED: 2}
    late = judge()
    late.add(event("x.json", repo="org/bert", ts_ms=MS + 9 * 86_400_000), None, same("old"), "f", 0)
    late.add(event("open_clip_model.safetensors"), None, same("old"), "f", 1)  # 9 days behind the watermark
    assert late.outcomes == {OUTSIDE: 1, DEAD: 1}


def test_repeats_within_a_load_count_config_files_beyond_the_first_download() -> None:
    # One load (same user, repo, 5 minutes): HEAD and GET of the weights both count.
    j = judge()
    for method in ("HEAD", "GET"):
        j.add(event("open_clip_model.safetensors", method=method), MS, same("old"), "p", 0)
    j.add(event("open_clip_pytorch_model.bin", user="u2"), MS, same("old"), "p", 1)
    figures = j.libraries["open_clip"]
    assert figures.files == {"open_clip_model.safetensors": [0, 2], "open_clip_pytorch_model.bin": [1, 1]}
    assert figures.repeats() == {"before": 0, "after": 1, "configBefore": 0, "configAfter": 0}


def test_an_event_of_an_unknown_version_is_set_aside() -> None:
    j = judge()
    j.add(event("open_clip_model.safetensors"), MS, same(None), "p", 0)
    assert j.outcomes == {"unknown_version": 1}


def test_a_period_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="ends"):
        Period(date(2026, 11, 2), date(2026, 11, 1))
    period = Period(date(2026, 11, 1), date(2026, 11, 2))
    assert period.days() == ["2026-11-01", "2026-11-02"] and period.end_ms - period.start_ms == 2 * 86_400_000


def test_judges_of_parts_merged_are_the_judge_of_the_whole() -> None:
    # What --jobs relies on: any split of the events, merged, gives the same figures.
    events = [(event(path, user=user, ts_ms=MS + i * 60_000), i) for i, (path, user) in enumerate([
        ("open_clip_model.safetensors", "u1"), ("open_clip_pytorch_model.bin", "u1"), ("open_clip_config.json", "u2"),
        ("open_clip_model.safetensors", "u2"), ("x.bin", None)])] + [(b"{not json", 9), (event("a", "org/bert"), 10)]
    whole = judge()
    for raw, position in events:
        whole.add(raw, MS, same("old"), "p", position)
    merged, parts = judge(), [judge(), judge()]
    for raw, position in events:
        parts[position % 2].add(raw, MS, same("old"), "p", position)
    for part in parts:
        merged.merge(part.verdicts())
    assert merged.verdicts() == whole.verdicts()
    assert whole.outcomes[JUDGED] == 5 and whole.libraries["open_clip"].loads
