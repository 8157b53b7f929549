"""A recount's changes: the new tally minus the old, in the store's field names."""

from __future__ import annotations

import pytest

from stream.counting import Tally
from stream.recount.changes import changes

pytestmark = pytest.mark.unit

CLIP, DAY = "model:org/clip", "2026-11-20"


def test_a_path_the_new_rules_count_moves_from_uncounted_to_the_breakdown() -> None:
    old = Tally(plain={(CLIP, DAY): 1}, breakdown={(CLIP, DAY): {"c:ci": 1, "f:a.bin": 1}},
                uncounted={(CLIP, DAY): {"b.safetensors": 2, "README.md": 1}})
    new = Tally(plain={(CLIP, DAY): 3}, breakdown={(CLIP, DAY): {"c:ci": 3, "f:a.bin": 1, "f:b.safetensors": 2}},
                downloaders={(CLIP, DAY): {"u2", "u1"}}, uncounted={(CLIP, DAY): {"README.md": 1}})
    [change] = changes(old, new, {CLIP: "open_clip"}.get)
    assert (change.repo, change.day, change.library, change.old, change.new) == (CLIP, DAY, "open_clip", 1, 3)
    assert change.breakdown == {"c:ci": 2, "f:b.safetensors": 2}
    assert change.uncounted == {"p:b.safetensors": -2}  # README.md is the same under both
    assert change.downloaders == ["u1", "u2"]


def test_repo_days_the_rules_judge_alike_are_no_change() -> None:
    same = Tally(plain={(CLIP, DAY): 1}, uncounted={(CLIP, DAY): {"README.md": 1}})
    assert changes(same, Tally(plain={(CLIP, DAY): 1}, uncounted={(CLIP, DAY): {"README.md": 1}}), {}.get) == []
