"""Parsing one CDN file-request event: what is accepted, and each rejection's reason."""

from __future__ import annotations

import orjson
import pytest

from stream.errors import EventError
from stream.events import FileRequest, parse_event, parse_timestamp, parse_url

pytestmark = pytest.mark.unit


def raw(**fields: object) -> bytes:
    event = {"timestamp": "2026-11-21T10:00:00.123Z", "method": "GET", "status": 200,
             "repoType": "model", "repoName": "org/name", "path": "config.json"}
    event.update(fields)
    return orjson.dumps({k: v for k, v in event.items() if v is not None})


def reason(value: bytes, **kwargs: int) -> str:
    with pytest.raises(EventError) as caught:
        parse_event(value, **kwargs)
    assert caught.value.detail  # every rejection explains itself
    return caught.value.reason


def test_a_full_event_parses_to_its_fields():
    event = parse_event(raw(hashedUserId="u1", hashedIp="ip1", revision="main"))
    assert event == FileRequest(1_795_255_200_123, "GET", 200, "model", "org/name", "config.json",
                                "main", "u:u1")


def test_user_falls_back_to_the_hashed_ip_then_to_none():
    assert parse_event(raw(hashedIp="ip1")).user == "i:ip1"
    assert parse_event(raw(hashedUserId="", hashedIp="ip1")).user == "i:ip1"
    assert parse_event(raw()).user is None


def test_a_user_id_and_an_ip_with_the_same_text_are_different_users():
    assert parse_event(raw(hashedUserId="x")).user != parse_event(raw(hashedIp="x")).user


def test_optional_fields_of_the_wrong_type_are_ignored_not_rejected():
    event = parse_event(raw(hashedUserId=42, hashedIp=["a"], revision=7, bytes="many"))
    assert (event.user, event.revision) == (None, None)


def test_method_is_case_insensitive_and_status_may_be_a_digit_string():
    event = parse_event(raw(method="head", status="304"))
    assert (event.method, event.status) == ("HEAD", 304)


@pytest.mark.parametrize(("stamp", "expected"), [
    ("2026-11-21T10:00:00Z", 1_795_255_200_000),
    ("2026-11-21T12:00:00+02:00", 1_795_255_200_000),
    (1_795_255_200_000, 1_795_255_200_000),
])
def test_timestamps_with_a_zone_or_epoch_ms_are_utc_milliseconds(stamp, expected):
    assert parse_timestamp(stamp) == expected


@pytest.mark.parametrize("stamp", ["2026-11-21T10:00:00", "2026-11-21", "yesterday", 1_795_255_200])
def test_naive_unparseable_or_second_timestamps_are_rejected(stamp):
    assert reason(raw(timestamp=stamp)) == "bad_timestamp"


def test_url_form_is_split_and_percent_decoded_per_segment():
    assert parse_url("/org/name/resolve/refs%2Fpr%2F1/text_encoder/model.safetensors") == (
        "model", "org/name", "refs/pr/1", "text_encoder/model.safetensors")
    assert parse_url("/datasets/org/data/resolve/main/data/train-0.parquet")[:2] == ("dataset", "org/data")
    assert parse_url("https://hub.example/spaces/org/app/resolve/main/app.py")[:2] == ("space", "org/app")
    assert parse_url("/gpt2/resolve/main/config.json")[1] == "gpt2"
    # the host is not read: one that urlsplit refuses (and stopped the worker) is no matter
    assert parse_url("http://[::1/org/name/resolve/main/x")[1] == "org/name"


def test_a_repo_named_resolve_in_url_form_is_org_slash_name():
    assert parse_url("/org/resolve/resolve/main/config.json") == ("model", "org/resolve", "main", "config.json")
    assert parse_url("/resolve/resolve/main/config.json") == ("model", "resolve", "main", "config.json")


def test_a_repo_type_beside_a_url_does_not_stop_the_url_form():
    value = orjson.dumps({"timestamp": 1_795_255_200_000, "method": "GET", "status": 200, "repoType": "model",
                          "url": "/datasets/org/d/resolve/main/x.csv"})
    assert (parse_event(value).repo_type, parse_event(value).repo) == ("dataset", "org/d")


def test_an_event_with_only_a_url_parses():
    value = orjson.dumps({"timestamp": 1_795_255_200_000, "method": "GET", "status": 200,
                          "url": "/datasets/org/d/resolve/main/a%20b.csv"})
    event = parse_event(value)
    assert (event.repo_type, event.repo, event.path) == ("dataset", "org/d", "a b.csv")


@pytest.mark.parametrize("url", ["org/name/resolve/main/x", "/org/name/blob/main/x", "/org/name/resolve/main",
                                 "/a/b/c/resolve/main/x", "/org/name/resolve/main/%ff.bin",
                                 "/org/name/resolve/main/a//b", "//org/name/resolve/main/x", "mailto:x"])
def test_unparseable_urls_are_rejected(url):
    value = orjson.dumps({"timestamp": 1_795_255_200_000, "method": "GET", "status": 200, "url": url})
    assert reason(value) == "bad_url"


@pytest.mark.parametrize(("value", "expected"), [
    (b"\xff\xfe{}", "not_utf8"),
    (b'{"timestamp": "\xff"}', "not_utf8"),
    (b'{"timestamp": ', "bad_json"),
    (b"[1, 2]", "not_object"),
    (b'"GET"', "not_object"),
    (raw(method=None), "missing_field"),
    (raw(path=None), "missing_field"),
    (raw(status=True), "bad_field"),
    (raw(status="2xx"), "bad_field"),
    (raw(timestamp=1.5), "bad_field"),
    (raw(repoName="a/b/c"), "bad_field"),
    (raw(repoName=""), "bad_field"),
    (raw(path=""), "bad_field"),
    (raw(repoType="collection"), "unknown_repo_type"),
    (raw()[:-1] + b', "userAgent": "Mozilla \xff"}', "not_utf8"),  # in a field the decoder skips
    (raw()[:-1] + b', "x": "\xed\xa0\x80"}', "not_utf8"),  # an encoded surrogate
    (b'{"timestamp": true, "x": [}', "bad_json"),  # a type error early does not hide bad syntax
    (raw()[:-1] + b', "x": ' + b"[" * 600 + b"]" * 600 + b"}", "bad_json"),  # the decoder would recurse
    (raw()[:-1] + b', "x": "\\ud800"}', "bad_json"),  # a lone surrogate escape
    (raw(status="9" * 5000), "bad_field"),  # too long for int(): it used to stop the worker
    (raw(status="0200"), "bad_field"),
    (raw(repoName="a--b"), "bad_field"),
    (raw(repoName="org/-name"), "bad_field"),
    (raw(repoName="a" * 97), "bad_field"),
    (raw(repoName="org/na me"), "bad_field"),
    (raw(timestamp="0001-01-01T00:30:00+01:00"), "bad_timestamp"),  # a date before year 1 in UTC
    (raw(timestamp="2100-01-01T00:00:00.001Z"), "bad_timestamp"),
])
def test_malformed_events_are_rejected_with_their_reason(value, expected):
    assert reason(value) == expected


def test_messages_over_the_size_limit_are_rejected_before_decoding():
    assert reason(raw(userAgent="x" * 2000), max_bytes=1024) == "oversized"


def test_fractional_seconds_convert_exactly_to_milliseconds():
    # Float seconds times 1000 can land a millisecond low; bucket and window edges must not.
    assert parse_timestamp("2026-11-21T10:00:00.293Z") % 1000 == 293
    assert parse_timestamp("2026-11-21T10:04:59.999Z") // 300_000 != parse_timestamp("2026-11-21T10:05:00Z") // 300_000
