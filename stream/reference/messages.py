"""The reference's reading of one message: a :class:`Request`, or why it is rejected.

Written from the contract (README, docs/OPERATIONS.md), not from the worker's parser:
the JSON is read by the standard library (the worker uses msgspec), urls, names and
timestamps by code of this module alone. A rejection carries the reason code the
worker's dead-letter topic uses, and the checks run in the contract's order; the first
that fails gives the reason:

1. ``oversized``: more bytes than the limit;
2. ``not_utf8``: the bytes are not strict UTF-8, anywhere;
3. ``bad_json``: not one JSON document; a string (key or value, anywhere) holding a lone
   surrogate escape; arrays and objects nested more than 512 deep;
4. ``not_object``: the document is not an object;
5. ``bad_field``: a known field of the wrong type, in any of its occurrences (the last
   occurrence is the value). An integer literal over 4300 characters, or a number beyond
   a float's range, is no number the worker reads; then ``missing_field`` for a missing
   ``timestamp``, ``method`` or ``status``;
6. ``bad_field``: a ``status`` string that is not 1 to 3 ASCII digits;
7. the repo, from the url when ``repoName`` is absent or null and ``url`` is not
   (``bad_url``), else from the fields (``missing_field``, ``unknown_repo_type``,
   ``bad_field`` for an empty path); then ``bad_field`` for a name the Hub forbids;
8. ``bad_timestamp``: a string that is not ISO 8601 with a zone, or a time (either form)
   outside 2000-01-01..2100-01-01.
"""

from __future__ import annotations

import json
import math
import re
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)
MAX_NESTING = 512
LONGEST_INT_LITERAL = 4300  # Python's own limit on converting digits to an int
EARLIEST_MS = (datetime(2000, 1, 1, tzinfo=UTC) - EPOCH) // MS
LATEST_MS = (datetime(2100, 1, 1, tzinfo=UTC) - EPOCH) // MS
REPO_TYPES = ("model", "dataset", "space")
URL_PREFIXES = {"datasets": "dataset", "spaces": "space"}

# What each known field may hold: "int|str", "str" (required), "str?" (null allowed),
# "any" (read only when it is a string, but still a JSON value the worker must decode).
FIELD_TYPES = {
    "timestamp": "int|str", "method": "str", "status": "int|str",
    "repoType": "str?", "repoName": "str?", "path": "str?", "url": "str?",
    "revision": "any", "hashedUserId": "any", "hashedIp": "any", "userAgent": "any", "country": "any",
}
REQUIRED = ("timestamp", "method", "status")


@dataclass(frozen=True, slots=True)
class Request:
    """A well-formed file request, reduced to what counting needs; ``ts_ms`` is UTC epoch ms."""

    repo_type: str
    repo: str
    path: str
    revision: str | None
    method: str
    status: int
    ts_ms: int
    user: tuple[str, str] | None
    user_agent: str | None = None
    country: str | None = None

    @property
    def timestamp(self) -> datetime:
        """The event time as an aware UTC datetime."""
        return EPOCH + self.ts_ms * MS


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message the worker dead-letters: its reason code and a line of detail."""

    reason: str
    detail: str


class _Reject(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class _Object(list):
    """A JSON object as its (key, value) pairs in order, repeated keys included."""


class _LongInt(str):
    """An integer literal too long to be a number the worker reads."""


def _int(literal: str) -> int | _LongInt:
    return _LongInt(literal) if len(literal) > LONGEST_INT_LITERAL else int(literal)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_JSON = json.JSONDecoder(object_pairs_hook=_Object, parse_int=_int, parse_constant=_no_constant)


def read_message(raw: bytes, max_bytes: int = 64 * 1024) -> Request | Rejected:
    """Read one message value as the worker must: a Request, or Rejected with its reason."""
    try:
        return _read(raw, max_bytes)
    except _Reject as exc:
        return Rejected(exc.reason, exc.detail)


def _read(raw: bytes, max_bytes: int) -> Request:
    if len(raw) > max_bytes:
        raise _Reject("oversized", f"{len(raw)} bytes, limit {max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Reject("not_utf8", str(exc)) from None
    try:
        document = _JSON.decode(text)
    except (ValueError, RecursionError) as exc:
        raise _Reject("bad_json", str(exc)) from None
    # Only an escape can make a lone surrogate, only many brackets a deep document.
    if _SURROGATE_ESCAPE.search(text) or text.count("[") + text.count("{") > MAX_NESTING:
        _check_structure(document)
    if not isinstance(document, _Object):
        raise _Reject("not_object", f"a JSON {type(document).__name__}, not an object")
    fields: dict[str, Any] = {}
    for key, value in document:
        kind = FIELD_TYPES.get(key)
        if kind is not None:
            if not _has_type(value, kind):
                raise _Reject("bad_field", f"{key} holds {value!r:.80}")
            fields[key] = value
    for key in REQUIRED:
        if key not in fields:
            raise _Reject("missing_field", f"no {key}")
    return _request(fields)


def _check_structure(document: Any) -> None:
    """Nesting depth and lone surrogates, over every value and key of the document."""
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if not _is_unicode(value):
                raise _Reject("bad_json", "a string escape is a lone surrogate")
        elif isinstance(value, list):
            if depth > MAX_NESTING:
                raise _Reject("bad_json", f"nested deeper than {MAX_NESTING}")
            if isinstance(value, _Object):
                pending.extend((key, depth) for key, _ in value)
                pending.extend((item, depth + 1) for _, item in value)
            else:
                pending.extend((item, depth + 1) for item in value)


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _has_type(value: Any, kind: str) -> bool:
    if kind == "any":
        return _is_readable_number_tree(value)
    if kind == "int|str":
        return (type(value) is int) or (isinstance(value, str) and not isinstance(value, _LongInt))
    if kind == "str?" and value is None:
        return True
    return isinstance(value, str) and not isinstance(value, _LongInt)


def _is_readable_number_tree(value: Any) -> bool:
    """No too-long integer and no infinite float anywhere inside ``value``."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, _LongInt) or (isinstance(item, float) and math.isinf(item)):
            return False
        if isinstance(item, _Object):
            pending.extend(v for _, v in item)
        elif isinstance(item, list):
            pending.extend(item)
    return True


def _request(fields: dict[str, Any]) -> Request:
    status = fields["status"]
    if isinstance(status, str):
        if not (1 <= len(status) <= 3 and all(c in string.digits for c in status)):
            raise _Reject("bad_field", f"status {status!r:.40} is not an HTTP status")
        status = int(status)
    repo_name, url = fields.get("repoName"), fields.get("url")
    if repo_name is None and url is not None:
        repo_type, names, revision, path = _read_url(url)
    else:
        repo_type, path = fields.get("repoType"), fields.get("path")
        if repo_type is None or repo_name is None or path is None:
            raise _Reject("missing_field", "repoType, repoName and path, or a url, are needed")
        if repo_type not in REPO_TYPES:
            raise _Reject("unknown_repo_type", f"repoType {repo_type!r:.40}")
        if path == "":
            raise _Reject("bad_field", "empty path")
        names = repo_name.split("/")
        revision = fields.get("revision") if isinstance(fields.get("revision"), str) else None
    if not (1 <= len(names) <= 2 and all(_hub_name(n) for n in names)):
        raise _Reject("bad_field", f"repo name {'/'.join(names)!r:.120} is not one the Hub allows")
    user = None
    for key, kind in (("hashedUserId", "user"), ("hashedIp", "ip")):
        value = fields.get(key)
        if isinstance(value, str) and value:
            user = (kind, value)
            break
    agent, country = fields.get("userAgent"), fields.get("country")
    return Request(repo_type, "/".join(names), path, revision, fields["method"].upper(), status,
                   _timestamp_ms(fields["timestamp"]), user, agent if isinstance(agent, str) else None,
                   country if isinstance(country, str) else None)


_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "-_.")


def _hub_name(part: str) -> bool:
    """An org or a repo name: 1-96 of ``[A-Za-z0-9-_.]``, no ``-``/``.`` at the ends, no ``--``/``..``."""
    return (0 < len(part) <= 96 and set(part) <= _NAME_CHARS and part[0] not in "-."
            and part[-1] not in "-." and "--" not in part and ".." not in part)


_URL = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*)?(/[^?#]*)(?:[?#].*)?", re.DOTALL)
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


def _read_url(url: str) -> tuple[str, list[str], str, str]:
    """``[scheme://host]/[datasets|spaces/]{repo}/resolve/{rev}/{path}[?query][#fragment]``."""
    match = _URL.fullmatch(url)
    if match is None:
        raise _Reject("bad_url", f"{url!r:.120} is not a path or an http(s) url")
    segments = match.group(1).split("/")[1:]
    repo_type = "model"
    if segments and segments[0] in URL_PREFIXES:
        repo_type = URL_PREFIXES[segments.pop(0)]
    # org/name when "resolve" is the third segment and a revision and a path follow it;
    # else a legacy name without an org.
    if len(segments) >= 5 and segments[2] == "resolve":
        names, tail = segments[:2], segments[3:]
    elif len(segments) >= 4 and segments[1] == "resolve":
        names, tail = segments[:1], segments[2:]
    else:
        raise _Reject("bad_url", f"{url!r:.120} is not /{{repo}}/resolve/{{revision}}/{{path}}")
    if "" in names or "" in tail:
        raise _Reject("bad_url", f"{url!r:.120} has an empty segment")
    try:
        decoded = [_percent_decoded(s) for s in [*names, *tail]]
    except UnicodeDecodeError:
        raise _Reject("bad_url", f"{url!r:.120} percent-encodes bytes that are not UTF-8") from None
    names, revision, files = decoded[:len(names)], decoded[len(names)], decoded[len(names) + 1:]
    if any("/" in n for n in names):
        raise _Reject("bad_field", f"repo segment of {url!r:.120} decodes to a '/'")
    return repo_type, names, revision, "/".join(files)


def _percent_decoded(segment: str) -> str:
    out = bytearray()
    at = 0
    for escape in _ESCAPE.finditer(segment):
        out += segment[at:escape.start()].encode()
        out.append(int(escape.group(1), 16))
        at = escape.end()
    out += segment[at:].encode()
    return out.decode("utf-8")


def _timestamp_ms(value: int | str) -> int:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise _Reject("bad_timestamp", f"{value!r:.60} is not ISO 8601") from None
        if moment.utcoffset() is None:
            raise _Reject("bad_timestamp", f"{value!r:.60} has no zone")  # could be any of 26 hours
        since = moment - EPOCH
        value = since.days * 86_400_000 + since.seconds * 1000 + since.microseconds // 1000
    if not EARLIEST_MS <= value <= LATEST_MS:
        raise _Reject("bad_timestamp", f"{value} ms is outside 2000..2100")
    return value
