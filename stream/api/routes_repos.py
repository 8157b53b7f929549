"""One repo's downloads: ``/api/{models|datasets}/[{org}/]{name}[/downloads]``.

The shapes are the Hub's: ``{"id", "downloads", "downloadsAllTime"}`` (``expand[]``
picks fields) and a zero-filled daily series. Legacy ids without an organisation work
too, which makes ``/api/models/{name}/downloads`` ambiguous: it is the legacy repo
``name``'s daily series, never the repo ``name/downloads`` (the same rule as any path
API with sub-resources; such a repo is still listed and exported).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request

from stream.api.errors import NotFound
from stream.api.responses import JsonResponse
from stream.api.schemas import ERRORS, RepoDownloads, RepoInfo
from stream.api.state import ApiState
from stream.api.validation import EXPANDABLE, REPO_TYPE_OF_SEGMENT, day_range, parse_expand, parse_flag, repo_ref
from stream.store.rule_versions import day_versions
from stream.store.window import window_bounds

REPO_NOT_FOUND = "Repository not found"
EXCLUDED = ("ci", "bot")  # traffic classes downloadsExcludingCI leaves out

# The hot path reads its few query parameters itself (FastAPI's per-parameter machinery
# costs more than the Redis call); they are declared here for the OpenAPI description.
_EXPAND_DOC = {"name": "expand[]", "in": "query", "required": False, "style": "form", "explode": True,
               "description": "Fields to return besides id: downloads, downloadsExcludingCI, downloadsAllTime "
                              "(default: all)",
               "schema": {"type": "array", "items": {"type": "string", "enum": list(EXPANDABLE)}}}
_RANGE_DOC = [
    {"name": "start", "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
     "description": "First UTC day, YYYY-MM-DD (default: 29 days before end)"},
    {"name": "end", "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
     "description": "Last UTC day, YYYY-MM-DD, included (default: today)"},
    {"name": "rulesVersion", "in": "query", "required": False, "schema": {"type": "boolean"},
     "description": "Say which download rules version(s) counted each day (default: false)"},
]


async def repo_info(state: ApiState, segment: str, org: str | None, name: str,
                    expand: list[str]) -> JsonResponse:
    """The Hub's repo lookup restricted to download fields."""
    ref = repo_ref(segment, org, name)
    fields = parse_expand(expand)
    today = state.today()
    reader = await state.reader()
    window = window_bounds(today)
    found = await reader.repo_counts(ref.repo_type, ref.repo, *window, today)
    if found is None:
        raise NotFound(REPO_NOT_FOUND)
    body: dict[str, Any] = {"id": ref.repo}
    if "downloads" in fields:
        body["downloads"] = found.downloads
    if "downloadsExcludingCI" in fields:
        counted = [day for day, n in found.daily.items() if n]  # a day without downloads has no classes
        machines = await (await state.analytics()).excluded(ref.key, counted, EXCLUDED)
        body["downloadsExcludingCI"] = found.downloads - machines
    if "downloadsAllTime" in fields:
        body["downloadsAllTime"] = found.downloads_all_time
    return JsonResponse(body)


async def repo_downloads(state: ApiState, segment: str, org: str | None, name: str,
                         start: str | None, end: str | None, versions: str | None = None) -> JsonResponse:
    """Daily downloads over [start, end], zero-filled; the last 30 days by default. With
    ``versions`` (``rulesVersion=true``), each day says the rules version(s) that counted it."""
    ref = repo_ref(segment, org, name)
    today = state.today()
    days = day_range(start, end, today)
    with_versions = parse_flag(versions, "rulesVersion")
    reader = await state.reader()
    found = await reader.repo_counts(ref.repo_type, ref.repo, days.start, days.end, today)
    if found is None:
        raise NotFound(REPO_NOT_FOUND)
    daily: list[dict[str, Any]] = [{"date": day, "downloads": n} for day, n in found.daily.items()]
    shards = await reader.shards() if with_versions else None
    if shards is not None:
        counted_by = await day_versions(reader.client, shards, ref.key, list(found.daily))
        for entry in daily:
            if entry["date"] in counted_by:
                entry["rulesVersion"] = ",".join(counted_by[entry["date"]].split())
    return JsonResponse({
        "id": ref.repo, "repoType": ref.repo_type, "start": days.start.isoformat(), "end": days.end.isoformat(),
        "daily": daily,
    })


def repo_router() -> APIRouter:
    """The lookup routes for models and datasets, most specific paths first."""
    router = APIRouter()
    for segment in REPO_TYPE_OF_SEGMENT:
        _add_routes(router, segment)
    return router


def _add_routes(router: APIRouter, segment: str) -> None:
    prefix = f"/api/{segment}"
    kind = segment[:-1]

    def expand_of(request: Request) -> list[str]:
        query = request.query_params
        return [*query.getlist("expand[]"), *query.getlist("expand")]

    async def downloads(request: Request, org: str, name: str) -> JsonResponse:
        query = request.query_params
        return await repo_downloads(request.app.state.api, segment, org, name, query.get("start"), query.get("end"),
                                    query.get("rulesVersion"))

    async def legacy_downloads(request: Request, name: str) -> JsonResponse:
        query = request.query_params
        return await repo_downloads(request.app.state.api, segment, None, name, query.get("start"), query.get("end"),
                                    query.get("rulesVersion"))

    async def info(request: Request, org: str, name: str) -> JsonResponse:
        return await repo_info(request.app.state.api, segment, org, name, expand_of(request))

    async def legacy_info(request: Request, name: str) -> JsonResponse:
        return await repo_info(request.app.state.api, segment, None, name, expand_of(request))

    routes: list[tuple[str, Callable[..., Awaitable[JsonResponse]], type, str, list[dict[str, Any]]]] = [
        ("/{org}/{name}/downloads", downloads, RepoDownloads, f"Daily downloads of a {kind}", _RANGE_DOC),
        ("/{name}/downloads", legacy_downloads, RepoDownloads, f"Daily downloads of a legacy {kind} (no org)",
         _RANGE_DOC),
        ("/{org}/{name}", info, RepoInfo, f"Downloads of a {kind}: last 30 days and all time", [_EXPAND_DOC]),
        ("/{name}", legacy_info, RepoInfo, f"Downloads of a legacy {kind} (no org)", [_EXPAND_DOC]),
    ]
    for path, endpoint, model, summary, params in routes:
        router.add_api_route(prefix + path, endpoint, methods=["GET"], response_model=model,
                             response_model_exclude_none=True, summary=summary, tags=[segment],
                             responses=ERRORS, operation_id=f"{endpoint.__name__}_{segment}",
                             openapi_extra={"parameters": params})
