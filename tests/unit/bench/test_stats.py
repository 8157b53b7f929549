"""The figures' arithmetic: percentiles, run summaries, ratios and rates."""

from __future__ import annotations

import pytest

from bench.stats import RunSummary, percentile, rate, ratio

pytestmark = pytest.mark.unit


def test_percentile_interpolates_between_closest_ranks():
    # numpy's default definition: p50 of 1..4 is halfway between 2 and 3.
    assert percentile([4, 1, 3, 2], 50) == 2.5


def test_percentile_ends_are_min_and_max():
    # p0 and p100 must not extrapolate past the data.
    values = [5.0, 1.0, 9.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 9.0


def test_p99_of_a_hundred_values_sits_just_below_the_largest():
    # 1..100: rank 98.01 of 0..99, between 99 and 100.
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)


def test_percentile_of_one_value_is_that_value():
    assert percentile([7.0], 99) == 7.0


def test_percentile_rejects_no_values_and_out_of_range_q():
    # A latency figure from no probes is a bug, not zero.
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_ratio_is_none_without_a_usable_reference():
    # A missing drain figure must show as "—", not crash the report or divide by zero.
    assert ratio(5.0, 10.0) == 0.5
    assert ratio(None, 10.0) is None
    assert ratio(5.0, None) is None
    assert ratio(5.0, 0.0) is None


def test_run_summary_keeps_best_median_and_worst():
    # Higher is better for rates: best is the largest.
    summary = RunSummary.of([100.0, 300.0, 200.0])
    assert (summary.runs, summary.best, summary.median, summary.worst) == (3, 300.0, 200.0, 100.0)


def test_run_summary_of_no_runs_is_an_error():
    with pytest.raises(ValueError):
        RunSummary.of([])


def test_rate_refuses_an_empty_window():
    # A zero-length window means the timing failed; infinity would look like a record.
    assert rate(1000, 2.0) == 500.0
    with pytest.raises(ValueError):
        rate(1000, 0.0)
