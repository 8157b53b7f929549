"""The Hub's listings by downloads: ``/api/models?sort=downloads&limit=N[&author=org]``.

Without ``author`` the top comes from the per-shard leaderboards (30-day window or all
time): a few entries per shard, whatever the number of repos. With ``author`` it reads
the organisation's index and its members' scores on those leaderboards, at most
``stream.api.orgs.MAX_ORG_READ`` repos of it (see :mod:`stream.api.orgs`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from stream.api.responses import JsonResponse
from stream.api.schemas import ERRORS, ListedRepo
from stream.api.state import ApiState, get_state
from stream.api.validation import MAX_LIMIT, REPO_TYPE_OF_SEGMENT, Sort, check_org, parse_sort, repo_type_of
from stream.store.reader import RepoCounts

DEFAULT_LIMIT = 100

State = Annotated[ApiState, Depends(get_state)]
SortParam = Annotated[str | None, Query(description="downloads (last 30 days, default) or downloadsAllTime")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"How many repos, at most {MAX_LIMIT}")]
Author = Annotated[str | None, Query(description="Only this organisation's (or user's) repos")]


async def list_repos(state: ApiState, segment: str, sort: str | None, limit: int,
                     author: str | None) -> list[dict[str, Any]]:
    """The ``limit`` repos of one type with the most downloads, highest first, ties by id."""
    repo_type = repo_type_of(segment)
    order = parse_sort(sort)
    today = state.today()
    if author is not None:
        index = await state.orgs.get(check_org(author))  # at most MAX_ORG_READ of its repos
        repo_keys = [k for k in index.keys if k.startswith(f"{repo_type}:")]
        counted = await state.reader.totals_many(repo_keys, today)
        counted.sort(key=lambda r: (-_value(r, order), r.repo))
        return [_item(r, order) for r in counted[:limit]]
    all_time = order == "downloadsAllTime"
    ranked = await state.reader.leaders(repo_type, limit, all_time=all_time, today=today)
    if not all_time:
        return [{"id": r.repo, "downloads": r.downloads} for r in ranked]
    # The all-time leaderboard has no 30-day figure: read it from the repos themselves.
    counted = await state.reader.totals_many([f"{r.repo_type}:{r.repo}" for r in ranked], today)
    return [_item(r, order) for r in counted]


def _value(counts: RepoCounts, order: Sort) -> int:
    return counts.downloads if order == "downloads" else counts.downloads_all_time


def _item(counts: RepoCounts, order: Sort) -> dict[str, Any]:
    item: dict[str, Any] = {"id": counts.repo, "downloads": counts.downloads}
    if order == "downloadsAllTime":
        item["downloadsAllTime"] = counts.downloads_all_time
    return item


def listing_router() -> APIRouter:
    """``GET /api/models`` and ``GET /api/datasets``."""
    router = APIRouter()
    for segment in REPO_TYPE_OF_SEGMENT:
        _add_route(router, segment)
    return router


def _add_route(router: APIRouter, segment: str) -> None:
    async def listing(state: State, sort: SortParam = None, limit: Limit = DEFAULT_LIMIT,
                      author: Author = None) -> JsonResponse:
        key = ("list", segment, sort, limit, author)
        return JsonResponse(await state.listings.get(key, lambda: list_repos(state, segment, sort, limit, author)))

    router.add_api_route(f"/api/{segment}", listing, methods=["GET"], response_model=list[ListedRepo],
                         response_model_exclude_none=True, tags=[segment], responses=ERRORS,
                         summary=f"Top {segment} by downloads", operation_id=f"list_{segment}")
