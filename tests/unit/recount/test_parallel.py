"""How a recount's sources are shared out to its jobs (stream.recount.parallel)."""

from __future__ import annotations

import pytest

from stream.recount.parallel import deal, runs

pytestmark = pytest.mark.unit


def test_deal_gives_each_source_once_and_balances_the_largest_first() -> None:
    sizes = [10, 80, 30, 30, 20, 0]
    groups = deal(sizes, 2)
    assert sorted(i for group in groups for i in group) == list(range(len(sizes)))
    assert sorted(sum(sizes[i] for i in group) for group in groups) == [80, 90]
    assert all(group == sorted(group) for group in groups)


def test_deal_drops_jobs_with_nothing_to_do() -> None:
    assert deal([5, 7], 8) == [[1], [0]]
    assert deal([], 4) == []


def test_runs_keep_the_order_and_cut_into_about_equal_parts() -> None:
    sizes = [10, 10, 10, 10, 10, 10]
    assert runs(sizes, 2) == [[0, 1, 2], [3, 4, 5]]
    assert runs(sizes, 3) == [[0, 1], [2, 3], [4, 5]]
    assert runs(sizes, 1) == [list(range(6))]
    assert runs([100, 1, 1], 2) == [[0], [1, 2]]
    assert runs([7], 4) == [[0]]
    assert runs([], 2) == []
