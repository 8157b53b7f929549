"""The CDN file-request event and its parsing (pure: no Kafka, no Redis).

One event is one JSON object whose field names follow the Hub's request-level log
export. :func:`parse_event` turns raw message bytes into a :class:`FileRequest` or raises
:class:`~stream.errors.EventError` with the short reason code the dead-letter topic uses.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final, Literal
from urllib.parse import unquote, urlsplit

import msgspec

from stream.errors import EventError

RepoType = Literal["model", "dataset", "space"]
REPO_TYPES: Final[frozenset[str]] = frozenset(("model", "dataset", "space"))
_URL_PREFIXES: Final[dict[str, RepoType]] = {"datasets": "dataset", "spaces": "space"}

# Reason codes, as they appear in the DLQ and in metrics.
OVERSIZED = "oversized"
NOT_UTF8 = "not_utf8"
BAD_JSON = "bad_json"
NOT_OBJECT = "not_object"
MISSING_FIELD = "missing_field"
BAD_FIELD = "bad_field"
BAD_TIMESTAMP = "bad_timestamp"
UNKNOWN_REPO_TYPE = "unknown_repo_type"
BAD_URL = "bad_url"
TOO_LATE = "too_late"
TOO_EARLY = "too_early"
REJECT_REASONS: Final[tuple[str, ...]] = (
    OVERSIZED, NOT_UTF8, BAD_JSON, NOT_OBJECT, MISSING_FIELD, BAD_FIELD, BAD_TIMESTAMP,
    UNKNOWN_REPO_TYPE, BAD_URL, TOO_LATE, TOO_EARLY,
)

# Epoch-ms timestamps outside these bounds are certainly unit mistakes (seconds, micros).
_MIN_EPOCH_MS: Final = 946_684_800_000  # 2000-01-01
_MAX_EPOCH_MS: Final = 4_102_444_800_000  # 2100-01-01


class _Wire(msgspec.Struct, gc=False):
    """The JSON shape on the wire; msgspec checks types while decoding.

    Untracked by the garbage collector (``gc=False``): decoded JSON cannot form cycles.
    """

    timestamp: int | str
    method: str
    status: int | str
    repoType: str | None = None
    repoName: str | None = None
    path: str | None = None
    revision: object = None
    url: str | None = None
    # Optional fields of the wrong type are ignored rather than rejected: they do not
    # change whether a request happened, only who made it.
    hashedUserId: object = None
    hashedIp: object = None
    userAgent: object = None
    country: object = None


_decoder = msgspec.json.Decoder(_Wire)


class FileRequest(msgspec.Struct, frozen=True, gc=False):
    """One validated file request (a msgspec Struct: built per event, it must be cheap).

    ``ts_ms`` is UTC epoch milliseconds; ``method`` is upper case; ``user`` identifies who
    made the request for dataset dedupe: ``u:<hashedUserId>``, else ``i:<hashedIp>``, else
    None (an anonymous request, which counts alone). ``user_agent`` and ``country`` (ISO
    3166-1 alpha-2, unchecked) are None when the event has none, or not as a string.
    """

    ts_ms: int
    method: str
    status: int
    repo_type: RepoType
    repo: str
    path: str
    revision: str | None
    user: str | None
    user_agent: str | None = None
    country: str | None = None


def parse_event(raw: bytes, max_bytes: int = 64 * 1024) -> FileRequest:
    """Decode and validate one message value; raise EventError with a reason code."""
    if len(raw) > max_bytes:
        raise EventError(OVERSIZED, f"{len(raw)} bytes is over the {max_bytes}-byte limit")
    try:
        wire = _decoder.decode(raw)
    except UnicodeDecodeError as exc:
        raise EventError(NOT_UTF8, f"not valid UTF-8: {exc}") from None
    except msgspec.ValidationError as exc:
        raise _validation_error(str(exc)) from None
    except msgspec.DecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as utf8_exc:
            raise EventError(NOT_UTF8, f"not valid UTF-8: {utf8_exc}") from None
        raise EventError(BAD_JSON, str(exc)) from None

    status = wire.status
    if status.__class__ is str:
        if not (status.isascii() and status.isdigit()):  # type: ignore[union-attr]
            raise EventError(BAD_FIELD, f"status {status!r} is not an integer")
        status = int(status)
    repo_type, repo, path = wire.repoType, wire.repoName, wire.path
    if repo is None and wire.url is not None:
        repo_type, repo, revision, path = parse_url(wire.url)
    else:
        if repo_type is None or repo is None or path is None:
            raise _missing_repo_fields(wire)
        if repo_type not in REPO_TYPES:
            raise EventError(UNKNOWN_REPO_TYPE, f"repoType {repo_type!r} is not model, dataset or space")
        if repo not in _valid_repos:
            _check_repo_name(repo)
        if not path:
            raise EventError(BAD_FIELD, "path is empty")
        revision = wire.revision if wire.revision.__class__ is str else None
    user_id, ip = wire.hashedUserId, wire.hashedIp
    if user_id.__class__ is str and user_id:
        user: str | None = f"u:{user_id}"
    elif ip.__class__ is str and ip:
        user = f"i:{ip}"
    else:
        user = None
    agent, country = wire.userAgent, wire.country
    return FileRequest(parse_timestamp(wire.timestamp), wire.method.upper(), status,  # type: ignore[arg-type]
                       repo_type, repo, path, revision, user,  # type: ignore[arg-type]
                       agent if agent.__class__ is str else None, country if country.__class__ is str else None)


def _missing_repo_fields(wire: _Wire) -> EventError:
    missing = [name for name in ("repoType", "repoName", "path") if getattr(wire, name) is None]
    return EventError(MISSING_FIELD, f"missing {', '.join(missing)} (and no url)")


# Repo names already checked: most requests go to few repos, so checking each name once
# keeps validation off the per-event cost. Bounded so hostile input cannot grow it forever.
_valid_repos: set[str] = set()
_VALID_REPOS_MAX = 1_000_000


def _check_repo_name(repo: str) -> None:
    parts = repo.split("/")
    if not (1 <= len(parts) <= 2 and all(parts)):
        raise EventError(BAD_FIELD, f"repoName {repo!r} is not 'org/name' or 'name'")
    if len(_valid_repos) >= _VALID_REPOS_MAX:
        _valid_repos.clear()
    _valid_repos.add(repo)


def _validation_error(message: str) -> EventError:
    if message.startswith("Object missing required field"):
        return EventError(MISSING_FIELD, message)
    if message.startswith("Expected `object`"):
        return EventError(NOT_OBJECT, message)
    return EventError(BAD_FIELD, message)


def parse_timestamp(value: int | str) -> int:
    """UTC epoch milliseconds from epoch-ms or ISO 8601 with a zone; EventError otherwise."""
    if value.__class__ is int:
        if not _MIN_EPOCH_MS <= value <= _MAX_EPOCH_MS:  # type: ignore[operator]
            raise EventError(BAD_TIMESTAMP, f"epoch milliseconds {value} out of range")
        return value  # type: ignore[return-value]
    try:
        moment = datetime.fromisoformat(value)  # type: ignore[arg-type]
    except ValueError:
        raise EventError(BAD_TIMESTAMP, f"timestamp {value!r} is not ISO 8601") from None
    if moment.tzinfo is None:
        raise EventError(BAD_TIMESTAMP, f"timestamp {value!r} has no time zone")
    return (moment - _EPOCH) // _ONE_MS  # exact integer arithmetic: no float rounding at edges


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)


def parse_url(url: str) -> tuple[RepoType, str, str | None, str]:
    """Split ``[/datasets|/spaces]/{repo}/resolve/{revision}/{path}`` into its parts.

    Segments are percent-decoded after splitting, so ``refs%2Fpr%2F1`` stays one segment
    (the revision ``refs/pr/1``). A scheme and host, and any query string, are ignored.
    """
    # CDN logs carry the path alone; only a full URL needs the (slower) general split.
    path_part = url.partition("?")[0].partition("#")[0] if url.startswith("/") else urlsplit(url).path
    segments = path_part.split("/")
    if not segments or segments[0] != "" or len(segments) < 2:
        raise EventError(BAD_URL, f"url {url!r} does not start with '/'")
    segments = segments[1:]
    repo_type: RepoType = _URL_PREFIXES.get(segments[0], "model")
    if segments[0] in _URL_PREFIXES:
        segments = segments[1:]
    try:
        resolve_at = segments.index("resolve", 1)
    except ValueError:
        raise EventError(BAD_URL, f"url {url!r} has no /resolve/ after the repo") from None
    repo_parts = segments[:resolve_at]
    rest = segments[resolve_at + 1 :]
    if len(repo_parts) > 2 or not all(repo_parts) or len(rest) < 2 or not all(rest):
        raise EventError(BAD_URL, f"url {url!r} is not /{{repo}}/resolve/{{revision}}/{{path}}")
    if "%" not in path_part:
        return repo_type, "/".join(repo_parts), rest[0], "/".join(rest[1:])
    try:
        repo = "/".join(unquote(part, errors="strict") for part in repo_parts)
        revision = unquote(rest[0], errors="strict")
        path = "/".join(unquote(part, errors="strict") for part in rest[1:])
    except UnicodeDecodeError:
        raise EventError(BAD_URL, f"url {url!r} percent-encodes bytes that are not UTF-8") from None
    return repo_type, repo, revision, path
