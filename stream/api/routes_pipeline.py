"""What the dashboard reads: live worker totals, the top repos with their daily series,
an organisation's summary and id suggestions for the search box.

Worker totals are cumulative; the page turns two samples into rates itself, so any API
process behind a balancer can answer any poll (no per-process memory of past samples).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from stream.api.errors import BadRequest, NotFound
from stream.api.responses import JsonResponse
from stream.api.state import ApiState, get_state
from stream.api.validation import DayRange, check_org
from stream.store import keys
from stream.store.writer import window_bounds

MAX_TOP = 100
MAX_ORG_REPOS = 1000
MAX_SUGGESTIONS = 20

State = Annotated[ApiState, Depends(get_state)]
RepoTypeParam = Annotated[str, Query(alias="repoType", description="model or dataset")]


def _camel(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)


def pipeline_router() -> APIRouter:
    """``/api/pipeline/*``: the dashboard's data."""
    router = APIRouter(prefix="/api/pipeline", tags=["dashboard"])

    @router.get("/workers", summary="Live totals of every worker (cumulative; rates come from two samples)")
    async def workers(state: State) -> JsonResponse:
        found = await state.reader.workers()
        body = [{"id": w.worker_id, "group": w.group, **{_camel(k): v for k, v in w.values.items()}} for w in found]
        return JsonResponse({"nowMs": int(time.time() * 1000), "workers": body})

    @router.get("/top", summary="Top repos of the last 30 days with their daily downloads")
    async def top(state: State, repo_type: RepoTypeParam = "model",
                  limit: Annotated[int, Query(ge=1, le=MAX_TOP)] = 10) -> JsonResponse:
        if repo_type not in keys.COUNTED_TYPES:
            raise BadRequest(f"unknown repoType {repo_type!r}: expected model or dataset")
        return JsonResponse(await state.listings.get(("top", repo_type, limit),
                                                     lambda: _top_with_series(state, repo_type, limit)))

    @router.get("/organizations/{org}", summary="An organisation's repos and totals")
    async def organization(state: State, org: str) -> JsonResponse:
        name = check_org(org)
        body = await state.listings.get(("org", name), lambda: _organization(state, name))
        if body is None:
            raise NotFound("Organization not found")
        return JsonResponse(body)

    @router.get("/suggest", summary="Counted repo ids of an organisation that start with the query")
    async def suggest(state: State, q: str = "",
                      limit: Annotated[int, Query(ge=1, le=MAX_SUGGESTIONS)] = 10) -> JsonResponse:
        return JsonResponse({"ids": await _suggestions(state, q.strip(), limit)})

    return router


async def _top_with_series(state: ApiState, repo_type: str, limit: int) -> dict[str, Any]:
    """The 30-day top of one type, each repo with its 30 daily counts (for the sparklines)."""
    today = state.today()
    start, end = window_bounds(today)
    ranked = await state.reader.leaders(repo_type, limit, today=today)
    counted = await state.reader.days_many([f"{r.repo_type}:{r.repo}" for r in ranked], DayRange(start, end).days())
    repos = [{"id": r.repo, "repoType": r.repo_type, "downloads": r.downloads,
              "downloadsAllTime": c.downloads_all_time, "daily": list(c.daily.values())}
             for r, c in zip(ranked, counted, strict=True)]
    return {"repoType": repo_type, "start": start.isoformat(), "end": end.isoformat(), "repos": repos}


async def _organization(state: ApiState, org: str) -> dict[str, Any] | None:
    """An org's totals and top repos, over at most ``stream.api.orgs.MAX_ORG_READ`` of its repos."""
    index = await state.orgs.get(org)
    if not index.size:
        return None
    counted = await state.reader.totals_many(index.keys, state.today())
    counted.sort(key=lambda c: (-c.downloads, -c.downloads_all_time, c.repo_type, c.repo))
    per_type: dict[str, int] = {}
    for c in counted:
        per_type[c.repo_type] = per_type.get(c.repo_type, 0) + 1
    return {
        "id": org, "repos": index.size, "reposRead": len(counted), "complete": index.complete,
        "reposByType": per_type,
        "downloads": sum(c.downloads for c in counted),
        "downloadsAllTime": sum(c.downloads_all_time for c in counted),
        "top": [{"id": c.repo, "repoType": c.repo_type, "downloads": c.downloads,
                 "downloadsAllTime": c.downloads_all_time} for c in counted[:MAX_ORG_REPOS]],
    }


async def _suggestions(state: ApiState, query: str, limit: int) -> list[dict[str, Any]]:
    """Ids from the org index of the query's organisation; nothing when it is no valid org."""
    org, _, prefix = query.partition("/")
    try:
        check_org(org)
    except BadRequest:
        return []  # a half-typed id is no error worth showing in a search box
    prefix = f"{org}/{prefix}".lower()
    out = []
    for repo_key in (await state.orgs.get(org)).keys:
        repo_type, _, repo = repo_key.partition(":")
        if repo.lower().startswith(prefix):
            out.append({"id": repo, "repoType": repo_type})
            if len(out) == limit:
                break
    return out
