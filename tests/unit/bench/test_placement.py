"""Where produced records landed: the offsets every wait relies on."""

from __future__ import annotations

import pytest

from bench.kafka_io import _placement

pytestmark = pytest.mark.unit


def test_batches_are_ordered_per_partition_by_base_offset():
    # Deliveries can come back in any order; offsets decide the order within a partition.
    produced = _placement([(0, 3, [5, 7]), (1, 0, [1]), (0, 0, [0, 2, 4])])
    assert produced.order == {0: [0, 2, 4, 5, 7], 1: [1]}
    assert produced.first_offset == {0: 0, 1: 0}
    assert produced.last_offsets() == {0: 4, 1: 0}
    assert produced.count == 6


def test_a_gap_between_batches_is_refused():
    # If offsets are not contiguous, a record's offset cannot be derived: fail loudly.
    with pytest.raises(RuntimeError):
        _placement([(0, 0, [0, 1]), (0, 5, [2])])
