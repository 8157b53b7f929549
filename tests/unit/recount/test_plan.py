"""Deciding a recount from what the shards recorded: fences, old versions, affected libraries."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest

from stream.recount.judge import AFTER_FENCE, Period
from stream.recount.plan import (
    affected_libraries,
    archive_version,
    kafka_fences,
    period_closed,
    recount_id,
)
from stream.rules.registry import Registry
from stream.rules.sources import RuleSpec, load_shipped
from stream.store.rule_versions import History, ShardRules

pytestmark = pytest.mark.unit


def history(*points: tuple[int, str]) -> History:
    found = History()
    for position, version in points:
        found.add(position, version)
    found.current = points[-1][1]
    return found


def test_a_history_says_which_version_counted_each_position_and_since_when_the_current_one() -> None:
    h = history((0, "a"), (100, "b"), (250, "a"), (400, "b"))
    assert [h.at(p) for p in (0, 99, 100, 260, 401)] == ["a", "a", "b", "a", "b"]
    assert h.since("b") == 400 and h.since("a") is None
    assert History().at(5) is None


def test_the_fence_is_the_switch_point_or_what_the_shard_holds() -> None:
    switched = ShardRules({"t:0": history((0, "old"), (120, "new"))})
    behind = ShardRules({"t:0": history((0, "old"))})
    fences, everywhere = kafka_fences([switched, behind], {"t:0": [300, 280]}, "new")
    assert fences == [{"t:0": 120}, {"t:0": 280}] and not everywhere
    fences, everywhere = kafka_fences([switched, ShardRules()], {"t:0": [300, None]}, "new")
    assert fences == [{"t:0": 120}, {"t:0": 0}] and everywhere  # a shard that never counted it holds nothing old


def test_archives_are_taken_as_counted_by_the_version_before_the_switch() -> None:
    rules = [ShardRules({"t:0": history((0, "v1"), (50, "v2")), "t:1": history((0, "v1"), (70, "v2"))})]
    assert archive_version(rules, "v2") == ({"v1"}, True)
    assert archive_version(rules, "v3") == ({"v2"}, False)


def test_a_changed_library_rule_affects_that_library_and_a_gguf_change_everything() -> None:
    shipped = load_shipped()
    new = Registry(shipped)
    old = Registry(shipped, {"open_clip": RuleSpec("open_clip", "query", 'path:"x.bin"', "test")})
    assert affected_libraries(new, [old]) == (False, frozenset({"open_clip"}))
    gguf = Registry(dataclasses.replace(shipped, always_counted_query='path_extension:"ggml"'))
    assert affected_libraries(new, [gguf])[0] is True


def test_placement_follows_the_shard_of_the_repo() -> None:
    from stream.recount.plan import Plan
    from stream.store.keys import shard_of

    repo = "model:org/clip"
    shard = shard_of(repo, 2)
    histories: list[dict[str, History]] = [{}, {}]
    histories[shard] = {"t:0": history((0, "old"), (10, "new"))}
    fences = [{"t:0": 0}, {"t:0": 0}]
    fences[shard] = {"t:0": 10}
    period = Period(date(2026, 11, 1), date(2026, 11, 1))
    plan = Plan(None, None, {}, {}, False, frozenset(), False, period, True, False, fences,  # type: ignore[arg-type]
                histories, None)
    place = plan.kafka_placement()
    assert place(repo, "t:0", 5) == "old" and place(repo, "t:0", 10) == AFTER_FENCE
    assert plan.read_to() == {"t:0": 10}


def test_a_period_is_closed_once_the_lateness_window_has_passed_its_end() -> None:
    period = Period(date(2026, 11, 1), date(2026, 11, 3))
    end = datetime(2026, 11, 4, tzinfo=UTC)
    assert not period_closed(period, timedelta(days=7), end + timedelta(days=6))
    assert period_closed(period, timedelta(days=7), end + timedelta(days=7))


def test_the_same_question_gets_the_same_id() -> None:
    period = Period(date(2026, 11, 1), date(2026, 11, 3))
    first = recount_id("abc", period, ("b", "a"), ("kafka",))
    assert first == recount_id("abc", period, ("a", "b"), ("kafka",)) != recount_id("abc", period, None, ("kafka",))
