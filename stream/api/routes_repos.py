"""One repo's downloads: ``/api/{models|datasets}/[{org}/]{name}[/downloads]``.

The shapes are the Hub's: ``{"id", "downloads", "downloadsAllTime"}`` (``expand[]``
picks fields) and a zero-filled daily series. Legacy ids without an organisation work
too, which makes ``/api/models/{name}/downloads`` ambiguous: it is the legacy repo
``name``'s daily series, never the repo ``name/downloads`` (the same rule as any path
API with sub-resources; such a repo is still listed and exported).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from stream.api.errors import NotFound
from stream.api.responses import JsonResponse
from stream.api.schemas import ERRORS, RepoDownloads, RepoInfo
from stream.api.state import ApiState, get_state
from stream.api.validation import REPO_TYPE_OF_SEGMENT, day_range, parse_expand, repo_ref

REPO_NOT_FOUND = "Repository not found"

State = Annotated[ApiState, Depends(get_state)]
ExpandList = Annotated[list[str] | None,
                       Query(alias="expand[]", description="Fields to return: downloads, downloadsAllTime")]
ExpandPlain = Annotated[list[str] | None, Query(alias="expand", include_in_schema=False)]
Start = Annotated[str | None, Query(description="First day, YYYY-MM-DD (UTC); default: 29 days before end")]
End = Annotated[str | None, Query(description="Last day, YYYY-MM-DD (UTC), included; default: today")]


async def repo_info(state: ApiState, segment: str, org: str | None, name: str,
                    expand: list[str]) -> JsonResponse:
    """The Hub's repo lookup restricted to download fields."""
    ref = repo_ref(segment, org, name)
    fields = parse_expand(expand)
    today = state.today()
    found = await state.reader.repo_counts(ref.repo_type, ref.repo, today, today, today)
    if found is None:
        raise NotFound(REPO_NOT_FOUND)
    body: dict[str, Any] = {"id": ref.repo}
    if "downloads" in fields:
        body["downloads"] = found.downloads
    if "downloadsAllTime" in fields:
        body["downloadsAllTime"] = found.downloads_all_time
    return JsonResponse(body)


async def repo_downloads(state: ApiState, segment: str, org: str | None, name: str,
                         start: str | None, end: str | None) -> JsonResponse:
    """Daily downloads over [start, end], zero-filled; the last 30 days by default."""
    ref = repo_ref(segment, org, name)
    today = state.today()
    days = day_range(start, end, today)
    found = await state.reader.repo_counts(ref.repo_type, ref.repo, days.start, days.end, today)
    if found is None:
        raise NotFound(REPO_NOT_FOUND)
    return JsonResponse({
        "id": ref.repo, "repoType": ref.repo_type, "start": days.start.isoformat(), "end": days.end.isoformat(),
        "daily": [{"date": day, "downloads": n} for day, n in found.daily.items()],
    })


def repo_router() -> APIRouter:
    """The lookup routes for models and datasets, most specific paths first."""
    router = APIRouter()
    for segment in REPO_TYPE_OF_SEGMENT:
        _add_routes(router, segment)
    return router


def _add_routes(router: APIRouter, segment: str) -> None:
    tag = segment
    prefix = f"/api/{segment}"
    kind = segment[:-1]

    async def downloads(state: State, org: str, name: str, start: Start = None, end: End = None) -> JsonResponse:
        return await repo_downloads(state, segment, org, name, start, end)

    async def legacy_downloads(state: State, name: str, start: Start = None, end: End = None) -> JsonResponse:
        return await repo_downloads(state, segment, None, name, start, end)

    async def info(state: State, org: str, name: str, expand_list: ExpandList = None,
                   expand_plain: ExpandPlain = None) -> JsonResponse:
        return await repo_info(state, segment, org, name, [*(expand_list or ()), *(expand_plain or ())])

    async def legacy_info(state: State, name: str, expand_list: ExpandList = None,
                          expand_plain: ExpandPlain = None) -> JsonResponse:
        return await repo_info(state, segment, None, name, [*(expand_list or ()), *(expand_plain or ())])

    routes: list[tuple[str, Callable[..., Awaitable[JsonResponse]], type, str]] = [
        ("/{org}/{name}/downloads", downloads, RepoDownloads, f"Daily downloads of a {kind}"),
        ("/{name}/downloads", legacy_downloads, RepoDownloads, f"Daily downloads of a legacy {kind} (no org)"),
        ("/{org}/{name}", info, RepoInfo, f"Downloads of a {kind}: last 30 days and all time"),
        ("/{name}", legacy_info, RepoInfo, f"Downloads of a legacy {kind} (no org)"),
    ]
    for path, endpoint, model, summary in routes:
        router.add_api_route(prefix + path, endpoint, methods=["GET"], response_model=model,
                             response_model_exclude_none=True, summary=summary, tags=[tag],
                             responses=ERRORS, operation_id=f"{endpoint.__name__}_{segment}")
