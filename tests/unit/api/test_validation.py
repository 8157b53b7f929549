"""Input checks: what a client may send before anything is read from Redis."""

from __future__ import annotations

from datetime import date

import pytest

from stream.api.errors import BadRequest
from stream.api.validation import (
    MAX_RANGE_DAYS,
    check_name,
    day_range,
    optional_day_range,
    parse_day,
    parse_expand,
    parse_repo_id,
    parse_sort,
    repo_ref,
)

pytestmark = pytest.mark.unit

TODAY = date(2026, 11, 22)


@pytest.mark.parametrize("name", ["gpt2", "Llama-3.1-8B", "a", "_private", "x_", "v1.5", "a-b_c.d", "9" * 96])
def test_hub_names_are_accepted(name: str) -> None:
    # Letters, digits, '-', '_', '.', up to 96 characters.
    assert check_name(name) == name


@pytest.mark.parametrize("name", [
    "", "-lead", "trail-", ".lead", "trail.", "a--b", "a..b", "9" * 97, "sp ace", "sla/sh", "ünï",
    "*", "a*", "[x]", "{tag}", "a?b", "two\nlines", "tab\t", "a:b", "%2F", "١٢٣",  # Arabic-Indic digits
])
def test_anything_else_is_refused(name: str) -> None:
    # Glob characters, separators, non-ASCII letters or digits never reach a key.
    with pytest.raises(BadRequest):
        check_name(name)


def test_bad_request_is_also_a_value_error() -> None:
    # Callers outside the API can catch it the usual way.
    with pytest.raises(ValueError, match="invalid repo name"):
        repo_ref("models", "org", "bad--name")


def test_repo_ref_maps_the_path_segment_to_the_repo_type() -> None:
    assert repo_ref("models", "org", "name").key == "model:org/name"
    assert repo_ref("datasets", None, "squad").key == "dataset:squad"
    with pytest.raises(BadRequest, match="unknown repo type"):
        repo_ref("spaces", "org", "name")


def test_repo_id_from_the_search_box() -> None:
    assert parse_repo_id("org/name", "dataset").key == "dataset:org/name"
    assert parse_repo_id("gpt2", "model").key == "model:gpt2"
    with pytest.raises(BadRequest):
        parse_repo_id("a/b/c", "model")


@pytest.mark.parametrize("text", ["2026-13-01", "2026-02-30", "20261122", "2026-11-22T00:00:00", "2026-1-2",
                                  " 2026-11-22", "yesterday", "２０２６-11-22"])
def test_only_real_yyyy_mm_dd_dates(text: str) -> None:
    with pytest.raises(BadRequest):
        parse_day(text, "start")


def test_default_range_is_the_last_30_days() -> None:
    days = day_range(None, None, TODAY)
    assert (days.start, days.end) == (date(2026, 10, 24), TODAY)
    assert len(days.days()) == 30 and days.days()[-1] == "2026-11-22"


def test_a_range_with_one_end_given() -> None:
    # start alone runs to today; end alone covers the 30 days before it.
    assert day_range("2026-11-01", None, TODAY).end == TODAY
    assert day_range(None, "2026-01-30", TODAY).start == date(2026, 1, 1)


def test_end_before_start_is_refused() -> None:
    with pytest.raises(BadRequest, match="before start"):
        day_range("2026-11-10", "2026-11-09", TODAY)


def test_ranges_are_capped_at_400_days() -> None:
    assert len(day_range("2025-10-19", "2026-11-22", TODAY).days()) == MAX_RANGE_DAYS
    with pytest.raises(BadRequest, match="401 days"):
        day_range("2025-10-18", "2026-11-22", TODAY)


def test_no_range_at_all_means_every_day() -> None:
    assert optional_day_range(None, None, TODAY) is None
    assert optional_day_range("", "", TODAY) is None
    assert optional_day_range("2026-11-20", None, TODAY) is not None


def test_sort_values() -> None:
    assert parse_sort(None) == "downloads"
    assert parse_sort("downloadsAllTime") == "downloadsAllTime"
    for bad in ("likes", "-downloads", "DOWNLOADS", ""):
        with pytest.raises(BadRequest, match="unknown sort"):
            parse_sort(bad)


def test_expand_selects_known_fields_in_a_fixed_order() -> None:
    assert parse_expand([]) == ("downloads", "downloadsExcludingCI", "downloadsAllTime")
    assert parse_expand(["downloadsAllTime", "downloads"]) == ("downloads", "downloadsAllTime")
    assert parse_expand(["downloadsAllTime"]) == ("downloadsAllTime",)
    with pytest.raises(BadRequest, match="unknown expand"):
        parse_expand(["likes"])


def test_error_messages_stay_short_whatever_the_input() -> None:
    with pytest.raises(BadRequest) as caught:
        check_name("x" * 10_000)
    assert len(str(caught.value)) < 400
