"""Where a partition's counting starts, from the shards' markers, the committed offset and
Kafka's first retained offset (``stream.store.markers.plan_start``)."""

from __future__ import annotations

import pytest

from stream.store.markers import StartPlan, plan_start

pytestmark = pytest.mark.unit

NONE4: list[int | None] = [None] * 4


def test_a_new_partition_starts_where_the_log_starts():
    # Nothing in Redis, nothing committed: count everything Kafka has, report nothing.
    assert plan_start(NONE4, NONE4, committed=None, log_start=120) == StartPlan(120, 120, 120)


def test_the_lowest_marker_is_where_counting_goes_on():
    # Shards agree up to 500; one holds more (the batch in flight when the worker died).
    plan = plan_start([500, 520, 500, 500], NONE4, committed=500, log_start=0)
    assert (plan.start, plan.fetch, plan.base, plan.missing, plan.note) == (500, 500, 500, None, None)


def test_redis_behind_the_committed_offset_is_counted_again_from_redis():
    # A restore of an older snapshot: the commit says 900, Redis holds only 600.
    plan = plan_start([600] * 4, NONE4, committed=900, log_start=0)
    assert plan.start == 600 and "committed 900" in (plan.note or "")


def test_redis_ahead_of_the_committed_offset_goes_on_from_redis():
    # The last commits were lost, not the counts: nothing is read twice for nothing.
    assert plan_start([900] * 4, NONE4, committed=600, log_start=0).start == 900


def test_records_gone_from_kafka_are_reported_and_reading_starts_at_the_log_start():
    # Redis needs offsets from 300 on; retention left them from 450: [300, 450) are lost.
    plan = plan_start([300] * 4, NONE4, committed=800, log_start=450)
    assert (plan.start, plan.fetch, plan.missing) == (300, 450, (300, 450))


def test_a_shard_without_marker_among_others_lost_everything():
    # Every batch moves every marker: a shard with none lost all it held.
    plan = plan_start([700, None, 700, 700], NONE4, committed=700, log_start=0)
    assert (plan.start, plan.base, plan.missing) == (0, 0, None)
    assert "lost their counts" in (plan.note or "")
    gone = plan_start([700, None, 700, 700], NONE4, committed=700, log_start=50)
    assert (gone.start, gone.missing) == (50, (0, 50))


def test_redis_holding_nothing_of_a_counted_partition_counts_it_again():
    # The group committed 700, Redis holds nothing (emptied, or replaced): all of it again.
    plan = plan_start(NONE4, NONE4, committed=700, log_start=0)
    assert (plan.start, plan.missing) == (0, None) and "holds nothing" in (plan.note or "")
    assert plan_start(NONE4, NONE4, committed=700, log_start=40).missing == (0, 40)


def test_markers_of_the_earlier_layout_are_carried_over():
    # hc:{N}:applied held the last offset applied, only for shards a batch touched; every
    # shard held what was committed.
    plan = plan_start(NONE4, [41, None, 19, None], committed=30, log_start=0)
    assert plan.write == {0: 42, 1: 30, 2: 30, 3: 30}
    assert plan.start == 30
