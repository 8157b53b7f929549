"""The baselines' bookkeeping: when a run is done, and what one event adds."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson
import pytest

from bench.baseline_common import Decider, Increment, Progress
from stream.metadata import LibraryMap

pytestmark = pytest.mark.unit


def test_progress_is_done_when_every_partition_reached_its_last_offset():
    progress = Progress({0: 2, 1: 0})
    assert not progress.saw(0, 0)
    assert not progress.saw(1, 0)  # partition 1 is done, partition 0 is not
    assert progress.saw(0, 2)
    assert progress.seen == 3


def test_records_past_the_prefix_are_not_wanted_nor_counted():
    # Faust reads on past its prefix; those records must not count or move the tally.
    progress = Progress({0: 1})
    assert progress.wanted(0, 1) and not progress.wanted(0, 2) and not progress.wanted(3, 0)
    progress.saw(0, 5)
    assert progress.seen == 0 and not progress.pending


NOW_MS = int(time.time() * 1000)
TODAY = datetime.fromtimestamp(NOW_MS / 1000, UTC).date().isoformat()


def _event(**fields: object) -> bytes:
    base = {"timestamp": NOW_MS, "method": "GET", "status": 200, "repoType": "model",
            "repoName": "org/m", "path": "config.json"}
    return orjson.dumps({**base, **fields})


def test_decider_uses_the_project_rules_and_dedupe_keys():
    # The baselines must count exactly what the worker counts: the same parse and Counter.
    decider = Decider(LibraryMap())
    assert decider.decide(_event()) == Increment("model:org/m", TODAY, None, None)
    assert decider.decide(_event(path="README.md")) is None  # the default rule: not a query file
    assert decider.decide(_event(repoType="space")) is None
    dataset = decider.decide(_event(repoType="dataset", path="x.parquet", hashedUserId="abc"))
    assert dataset is not None and dataset.bucket is not None and dataset.user == "u:abc"
    assert decider.decide(b"{not json") is None
    assert decider.decide(_event(timestamp=NOW_MS - 8 * 86_400_000)) is None  # older than the lateness window
