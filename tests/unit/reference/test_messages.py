"""The worker's parser and the reference's agree on every message, however it is broken.

Hypothesis builds messages field by field (good values, wrong types, edge values, raw
JSON literals no serializer would write, repeated keys), then sometimes breaks the bytes
(cut short, invalid UTF-8, garbage, a size limit). Both parsers must take the same
decision: the same fields, or the same dead-letter reason.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stream.counting import Counter, Tally
from stream.errors import EventError
from stream.events import REJECT_REASONS, parse_event
from stream.reference import Rejected, read_message
from stream.rules import load_registry

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 21, 12, 0, 0, 123000, tzinfo=UTC)
LATENESS = timedelta(days=7)
NOW_MS = (NOW - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
_COUNTER = Counter(load_registry(), lambda key: None, LATENESS)
_WINDOW = _COUNTER.window(NOW)


def worker_reads(raw: bytes, max_bytes: int) -> tuple[str, Any]:
    """The worker's decision: ("ok", fields) or ("dead", reason), window included."""
    try:
        event = parse_event(raw, max_bytes)
        _COUNTER.add(event, Tally(), _WINDOW)
    except EventError as exc:
        return "dead", exc.reason
    user = None if event.user is None else ({"u": "user", "i": "ip"}[event.user[0]], event.user[2:])
    return "ok", (event.ts_ms, event.method, event.status, event.repo_type, event.repo, event.path,
                  event.revision, user, event.user_agent, event.country)


def reference_reads(raw: bytes, max_bytes: int) -> tuple[str, Any]:
    """The reference's decision, in the same shape."""
    read = read_message(raw, max_bytes)
    if isinstance(read, Rejected):
        return "dead", read.reason
    if read.ts_ms < _WINDOW[0]:
        return "dead", "too_late"
    if read.ts_ms > _WINDOW[1]:
        return "dead", "too_early"
    return "ok", (read.ts_ms, read.method, read.status, read.repo_type, read.repo, read.path,
                  read.revision, read.user, read.user_agent, read.country)


# --- values, as JSON text ----------------------------------------------------------------

def dumped(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    """JSON text of the values, with or without non-ASCII escaped."""
    return st.tuples(strategy, st.booleans()).map(lambda v: json.dumps(v[0], ensure_ascii=v[1]))


ODD_LITERALS = st.sampled_from([
    "9" * 4301, "-" + "9" * 4300, "9" * 4300, "1e999", "-1e999", "1e-999", "1" + "0" * 400 + ".0",
    "-0", "0.0", '"\\ud800"', '"\\udc00\\ud800"', '"\\ud83d\\ude00"', "NaN", "Infinity", "01", "1.",
    "[" * 600 + "]" * 600, "[" * 512 + "]" * 512, "[" * 511 + "]" * 511, '{"a":' * 520 + "1" + "}" * 520,
    '"a\\u0000b"', '"\\/"', "true", "false", "null", "[]", "{}", '"\\x"', "tru",
])
JSON_ANY = dumped(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6)) | ODD_LITERALS

IN_WINDOW_MS = st.integers(NOW_MS - LATENESS // timedelta(milliseconds=1) - 5, NOW_MS + 3_600_000 + 5)
EPOCH_MS = IN_WINDOW_MS | st.sampled_from([946_684_800_000, 946_684_799_999, 4_102_444_800_000,
                                          4_102_444_800_001, 0, -1, 1_795_255_200]) | st.integers()
ISO = st.builds(
    lambda ms, offset, fmt: _iso(ms, offset, fmt), IN_WINDOW_MS, st.integers(-23 * 60, 23 * 60),
    st.sampled_from(["full", "naive", "date", "space", "compact", "year1", "year9999"]))


def _iso(ms: int, offset_min: int, fmt: str) -> str:
    moment = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).astimezone(
        timezone(timedelta(minutes=offset_min)))
    if fmt == "naive":
        moment = moment.replace(tzinfo=None)
    if fmt == "date":
        return moment.date().isoformat()
    if fmt == "space":
        return moment.isoformat(sep=" ", timespec="microseconds")
    if fmt == "compact":
        return moment.strftime("%Y%m%dT%H%M%S%z")
    if fmt == "year1":
        return "0001-01-01T00:30:00+01:00"
    if fmt == "year9999":
        return "9999-12-31T23:59:59.999999-23:59"
    return moment.isoformat()


NAME_CHARS = st.sampled_from("aZ09-_.")
NAME_PART = st.text(NAME_CHARS, min_size=1, max_size=6) | st.sampled_from(
    ["gpt2", "resolve", "datasets", "a" * 96, "a" * 97, "-a", "a-", ".a", "a.", "a--b", "a..b", "a-b.c_d",
     "", "é", "a b", "a%2Fb"])
REPO_NAME = st.builds(lambda org, name, bare: name if bare else f"{org}/{name}", NAME_PART, NAME_PART,
                      st.booleans()) | st.sampled_from(["a/b/c", "/b", "a/", "org/name"])
PATH = st.sampled_from(["config.json", "model.safetensors", "a//b", "/config.json", "sub/", "x.gguf", "résumé.txt",
                        "a b.bin", "", "refs%2Fpr%2F1"]) | st.text(max_size=10)
SEGMENT = NAME_PART | st.sampled_from(["resolve", "main", "refs%2Fpr%2F1", "%ff", "%C3%A9", "%e2%82", "", "a%20b",
                                       "config.json", "%2F", "%"])
URL = st.builds(
    lambda origin, prefix, segments, suffix: origin + prefix + "".join("/" + s for s in segments) + suffix,
    st.sampled_from(["", "", "https://hub.example", "http://h:1", "//", "ftp://x?", "1http://h", "h"]),
    st.sampled_from(["", "", "/datasets", "/spaces"]),
    st.lists(SEGMENT, min_size=0, max_size=7),
    st.sampled_from(["", "", "?download=true", "#frag", "?a#b", "/"])) | st.text(max_size=12)

STATUS = st.integers(-1, 1000) | st.sampled_from(["200", "304", "0200", "2xx", " 200", "", "²", "9" * 5000, "404"])
FIELD_VALUES: dict[str, st.SearchStrategy[str]] = {
    "timestamp": dumped(EPOCH_MS | ISO | st.text(max_size=6)) | JSON_ANY,
    "method": dumped(st.sampled_from(["GET", "get", "HEAD", "Head", "POST", "", "gEt", "ß"])) | JSON_ANY,
    "status": dumped(STATUS) | JSON_ANY,
    "repoType": dumped(st.sampled_from(["model", "dataset", "space", "models", "collection", None])) | JSON_ANY,
    "repoName": dumped(REPO_NAME | st.none()) | JSON_ANY,
    "path": dumped(PATH | st.none()) | JSON_ANY,
    "url": dumped(URL | st.none()) | JSON_ANY,
    "revision": dumped(st.sampled_from(["main", "v1", ""])) | JSON_ANY,
    "hashedUserId": dumped(st.sampled_from(["u1", "", "x"])) | JSON_ANY,
    "hashedIp": dumped(st.sampled_from(["ip1", "", "x"])) | JSON_ANY,
    "userAgent": dumped(st.text(max_size=20)) | JSON_ANY,
    "country": dumped(st.sampled_from(["US", "de", "XX", ""])) | JSON_ANY,
    "meth\\u006fd": dumped(st.sampled_from(["GET", 5])),  # an escaped key is the same key
}
GOOD_PART = st.from_regex(r"[A-Za-z0-9_]([A-Za-z0-9_.-]{0,6}[A-Za-z0-9_])?", fullmatch=True).filter(
    lambda p: "--" not in p and ".." not in p) | st.sampled_from(["resolve", "datasets", "a" * 96])
GOOD_REPO = st.builds(lambda org, name, bare: name if bare else f"{org}/{name}", GOOD_PART, GOOD_PART,
                      st.integers(0, 5).map(lambda n: n == 0))
GOOD_FILE = st.lists(st.sampled_from(["config.json", "model.safetensors", "x.gguf", "sub", "a%20b.bin", "README.md",
                                      "adapter_config.json", "résumé", "resolve"]), min_size=1, max_size=3)
GOOD_URL = st.builds(
    lambda prefix, repo, revision, files, suffix: f"{prefix}/{repo}/resolve/{revision}/{'/'.join(files)}{suffix}",
    st.sampled_from(["", "/datasets", "/spaces", "https://hub.example"]), GOOD_REPO,
    st.sampled_from(["main", "refs%2Fpr%2F1", "0123abcd"]), GOOD_FILE, st.sampled_from(["", "?download=true"]))
GOOD_VALUES: dict[str, st.SearchStrategy[str]] = {
    "timestamp": dumped(IN_WINDOW_MS | ISO.filter(lambda t: ("T" in t and t[-6] in "+-") or t.endswith("Z"))),
    "method": dumped(st.sampled_from(["GET", "HEAD", "get", "POST"])),
    "status": dumped(st.sampled_from([200, 302, 404, "200", 500])),
    "repoType": dumped(st.sampled_from(["model", "model", "dataset", "space"])),
    "repoName": dumped(GOOD_REPO),
    "path": dumped(GOOD_FILE.map("/".join)),
    "url": dumped(GOOD_URL),
    "revision": dumped(st.sampled_from(["main", "v1"])),
    "hashedUserId": dumped(st.sampled_from(["u1", "u2", ""])),
    "hashedIp": dumped(st.sampled_from(["ip1", ""])),
    "userAgent": dumped(st.text(max_size=20)),
    "country": dumped(st.sampled_from(["US", "JP", "fr", "unknown"])),
}
FIELD_FORM = ("timestamp", "method", "status", "repoType", "repoName", "path")
URL_FORM = ("timestamp", "method", "status", "url")
OPTIONAL = ("revision", "hashedUserId", "hashedIp", "userAgent", "country")


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes, int]:
    """One message value and the size limit it is read with: mostly good, or nearly."""
    form = draw(st.sampled_from([FIELD_FORM, FIELD_FORM, URL_FORM]))
    keys = [*form, *(k for k in OPTIONAL if draw(st.booleans()))]
    pairs = [(key, draw(GOOD_VALUES[key])) for key in keys]
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 4]))):
        change = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if change == "delete" and pairs:
            pairs.pop(draw(st.integers(0, len(pairs) - 1)))
        elif change == "replace" and pairs:
            at = draw(st.integers(0, len(pairs) - 1))
            pairs[at] = (pairs[at][0], draw(FIELD_VALUES[pairs[at][0]]))
        else:  # a new field, or the same key again
            key = draw(st.sampled_from(sorted(FIELD_VALUES)))
            pairs.append((key, draw(FIELD_VALUES[key])))
    pairs = draw(st.permutations(pairs))
    text = "{" + ", ".join(f'"{k}": {v}' for k, v in pairs) + "}"
    raw = text.encode("utf-8", "surrogatepass")
    raw = draw(st.sampled_from(MUTATIONS))(draw, raw)
    max_bytes = draw(st.sampled_from([64 * 1024] * 8 + [256, len(raw), max(len(raw) - 1, 0)]))
    return raw, max_bytes


def _same(draw: st.DrawFn, raw: bytes) -> bytes:
    return raw


def _cut(draw: st.DrawFn, raw: bytes) -> bytes:
    return raw[:draw(st.integers(0, max(len(raw) - 1, 0)))]


def _bad_utf8(draw: st.DrawFn, raw: bytes) -> bytes:
    bad = draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80", b"\xf4\x90\x80\x80"]))
    at = draw(st.integers(0, len(raw)))
    return raw[:at] + bad + raw[at:]


def _bad_utf8_in_a_string(draw: st.DrawFn, raw: bytes) -> bytes:
    # Inside a string value of a field no one reads: the case the typed decoder skipped.
    return raw[:-1] + b', "userAgent": "Mozilla \xff\xfe"}' if raw.endswith(b"}") else raw


def _garbage(draw: st.DrawFn, raw: bytes) -> bytes:
    return draw(st.binary(max_size=40)) + raw[draw(st.integers(0, len(raw))):]


def _not_an_object(draw: st.DrawFn, raw: bytes) -> bytes:
    return draw(st.sampled_from([b"[" + raw + b"]", b"null", b"200", b'"GET"', b"", b"   ", b"\xef\xbb\xbf" + raw,
                                 raw + b" x", b" \n" + raw + b"\t\r\n", raw + b"\x0c"]))


def _huge(draw: st.DrawFn, raw: bytes) -> bytes:
    return raw[:-1] + b', "userAgent": "' + b"x" * draw(st.integers(200, 70_000)) + b'"}' if raw.endswith(b"}") else raw


MUTATIONS = [_same] * 14 + [_cut, _bad_utf8, _bad_utf8_in_a_string, _garbage, _not_an_object, _huge]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(messages())
@example((b'{"timestamp": "2026-11-21T10:00:00Z", "method": "GET", "status": 200, "repoType": "model", '
          b'"url": "/org/m/resolve/main/config.json"}', 65536))
@example((b'{"timestamp": 1795255200000, "method": 5, "x": [}', 65536))
@example((b'{"status": 200} \xff', 65536))
@example((b'{"timestamp": "0001-01-01T00:30:00+01:00", "method": "GET", "status": 200, "repoName": "o/n", '
          b'"repoType": "model", "path": "config.json"}', 65536))
def test_the_worker_and_the_reference_read_every_message_alike(message: tuple[bytes, int]) -> None:
    raw, max_bytes = message
    worker, reference = worker_reads(raw, max_bytes), reference_reads(raw, max_bytes)
    assert worker == reference, raw[:300]
    if worker[0] == "dead":
        assert worker[1] in REJECT_REASONS


def test_the_simulators_records_good_and_bad_are_read_alike():
    # Every bad kind the simulator makes is dead-lettered by both, for the same reason.
    from stream.simulate import Simulation

    records = list(Simulation(seed=5, repos=300, now=NOW, bad_fraction=0.3).records(4000))
    decisions = [(record.bad, worker_reads(record.value, 64 * 1024), reference_reads(record.value, 64 * 1024))
                 for record in records]
    assert all(worker == reference for _, worker, reference in decisions)
    assert all((bad is None) == (worker[0] == "ok") for bad, worker, _ in decisions)
    reasons = {worker[1] for bad, worker, _ in decisions if bad is not None}
    assert {"not_utf8", "oversized", "bad_field", "bad_url", "too_late", "too_early"} <= reasons
