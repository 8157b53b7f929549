"""Bad records, as a real log pipeline sees them now and then.

Each kind breaks exactly one thing the counting rules reject: unparseable JSON, a JSON
value that is not an object, a required field missing or of the wrong type, a timestamp
without a zone, an unknown repo type, a URL that is not a resolve URL, a timestamp
outside the lateness window (more than the allowed lateness behind ``now`` or more than an
hour ahead of it), bytes that are not UTF-8 in any field (the user agent most often),
a message over the default size limit (64 KiB), or a repo name the Hub does not allow.
"""

from __future__ import annotations

import random
from typing import Any, Protocol

import orjson

BAD_JSON = "bad_json"
NOT_OBJECT = "not_object"
MISSING_FIELD = "missing_field"
MISTYPED = "mistyped_field"
NAIVE_TIMESTAMP = "naive_timestamp"
UNKNOWN_REPO_TYPE = "unknown_repo_type"
BAD_URL = "bad_url"
# Out-of-window records stay out for an hour of wall-clock time after ``now``: a consumer
# judges them against its own clock, minutes after the log was made.
EDGE_MARGIN_MS = 3_600_000
TOO_LATE = "too_late"
TOO_EARLY = "too_early"
NOT_UTF8 = "not_utf8"
OVERSIZED = "oversized"
BAD_NAME = "bad_name"
KINDS = (BAD_JSON, NOT_OBJECT, MISSING_FIELD, MISTYPED, NAIVE_TIMESTAMP, UNKNOWN_REPO_TYPE,
         BAD_URL, TOO_LATE, TOO_EARLY, NOT_UTF8, OVERSIZED, BAD_NAME)
# Byte sequences a strict UTF-8 decoder refuses: a stray byte, an overlong '/', an encoded
# surrogate, a cut-off sequence (a Latin-1 user agent is the usual real-world source).
NOT_UTF8_BYTES = (b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"Mozilla/5.0 (\xe9t\xe9)")
OVERSIZED_BYTES = 64 * 1024
# An oversized record weighs as much as a hundred good ones: rarer, so it does not change
# what a workload measures.
WEIGHTS = tuple(0.1 if kind == OVERSIZED else 1.0 for kind in KINDS)
BAD_NAMES = ("org--x/name", "org/-name", "org/name.", "a" * 97 + "/x", "org/na me", "org/n\u00e4me", "org..x/y",
             "org/x/y")

HOUR_MS = 3_600_000
BAD_URLS = ("/api/models/{name}", "/{name}/blob/main/config.json", "/{name}/resolve/main/",
            "not a url", "/datasets/{name}/tree/main", "", "/{name}/resolve/main/a//config.json",
            "//{name}/resolve/main/config.json")
WRONG_TYPES: dict[str, tuple[Any, ...]] = {
    "status": ("OK", [200], 200.5, None, True),
    "method": (1, None, ["GET"]),
    "timestamp": (True, 1.7e12, None, "yesterday", {"ms": 0}),
    "repoName": (42, None, ["a", "b"]),
    "path": (None, 7),
    "repoType": (None, 1),
    "url": (None, 5),
}


class Stamper(Protocol):
    """Formats epoch milliseconds as ISO 8601 (offset in minutes east of UTC)."""

    def iso(self, ms: int, offset_min: int = 0) -> str: ...


def _required(event: dict[str, Any]) -> tuple[str, ...]:
    where = ("url",) if "url" in event else ("repoType", "repoName", "path")
    return ("timestamp", "method", "status", *where)


def spoil(rng: random.Random, event: dict[str, Any], now_ms: int, lateness_ms: int,
          stamps: Stamper) -> tuple[str, bytes]:
    """Break ``event`` in one of the :data:`KINDS`; returns the kind and the encoded line."""
    kind = rng.choices(KINDS, WEIGHTS)[0]
    event = dict(event)
    if kind == BAD_JSON:
        line = orjson.dumps(event)
        cut = rng.randint(1, len(line) - 2)  # a truncated line never parses
        return kind, line[:cut]
    if kind == NOT_OBJECT:
        return kind, orjson.dumps(rng.choice(([event], event.get("path", "x"), 200, None)))
    if kind == MISSING_FIELD:
        del event[rng.choice(_required(event))]
    elif kind == MISTYPED:
        name = rng.choice(_required(event))
        event[name] = rng.choice(WRONG_TYPES[name])
    elif kind == NAIVE_TIMESTAMP:
        event["timestamp"] = stamps.iso(now_ms - rng.randrange(86_400_000))[:-1]  # no "Z"
    elif kind == UNKNOWN_REPO_TYPE:
        if "url" in event:
            kind = BAD_URL  # a url carries its type in its prefix: spoil the url instead
            event["url"] = rng.choice(BAD_URLS).format(name="org/name")
        else:
            event["repoType"] = rng.choice(("collection", "paper", "organization"))
    elif kind == BAD_URL:
        name = event.pop("repoName", None) or "org/name"
        for field in ("repoType", "path", "revision"):
            event.pop(field, None)
        event["url"] = rng.choice(BAD_URLS).format(name=name)
    elif kind == NOT_UTF8:
        # Into the user agent (a field no decoder needs) or any other string, after encoding.
        texts = sorted(k for k, v in event.items() if isinstance(v, str))
        field = "userAgent" if "userAgent" in texts and rng.random() < 0.5 else rng.choice(texts)
        marker = "\x00hubcounter-bad-bytes\x00"
        event[field] = event[field] + marker
        return kind, orjson.dumps(event).replace(b"\\u0000hubcounter-bad-bytes\\u0000", rng.choice(NOT_UTF8_BYTES))
    elif kind == OVERSIZED:
        event["userAgent"] = "x" * (OVERSIZED_BYTES + rng.randint(1, 4096))
    elif kind == BAD_NAME:
        name = rng.choice(BAD_NAMES)
        if "url" in event:
            event["url"] = f"/{name}/resolve/main/config.json"
        else:
            event["repoName"] = name
    elif kind == TOO_LATE:
        event["timestamp"] = stamps.iso(now_ms - lateness_ms - EDGE_MARGIN_MS - rng.randint(1, 48 * HOUR_MS))
    else:
        event["timestamp"] = stamps.iso(now_ms + HOUR_MS + EDGE_MARGIN_MS + rng.randint(1, 24 * HOUR_MS))
    return kind, orjson.dumps(event)
