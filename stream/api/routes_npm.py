"""npm-style download counts: ``/api/downloads/{point|range}/{period}/{type}/{id}``.

The shapes of npm's registry API (``api.npmjs.org/downloads``), over UTC days. A period
is ``last-day`` (yesterday), ``last-week`` (the 7 days ending yesterday), ``last-month``
(the 30 days ending yesterday) or ``YYYY-MM-DD:YYYY-MM-DD``: complete days, like npm's.
``type`` is ``model`` or ``dataset``; ``id`` is ``org/name`` (or a legacy ``name``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request

from stream.api.errors import BadRequest, NotFound
from stream.api.responses import JsonResponse
from stream.api.routes_repos import REPO_NOT_FOUND
from stream.api.schemas import ERRORS, PointAnswer, RangeAnswer
from stream.api.state import ApiState
from stream.api.validation import DayRange, day_range, repo_ref

PERIODS = {"last-day": 1, "last-week": 7, "last-month": 30}
_PERIOD_DOC = {"name": "period", "in": "path", "required": True, "schema": {"type": "string"},
               "description": "last-day, last-week, last-month (complete UTC days ending yesterday) "
                              "or YYYY-MM-DD:YYYY-MM-DD"}


def parse_period(value: str, state: ApiState) -> DayRange:
    yesterday = state.today() - timedelta(days=1)
    days = PERIODS.get(value)
    if days is not None:
        return DayRange(yesterday - timedelta(days=days - 1), yesterday)
    start, sep, end = value.partition(":")
    if not sep:
        raise BadRequest(f"unknown period {value[:40]!r}: expected {', '.join(PERIODS)} or YYYY-MM-DD:YYYY-MM-DD")
    return day_range(start, end, state.today())


async def _counts(state: ApiState, period: str, repo_type: str, org: str | None, name: str) -> tuple[Any, Any, Any]:
    if repo_type not in ("model", "dataset"):
        raise BadRequest(f"unknown type {repo_type[:20]!r}: expected model or dataset")
    ref = repo_ref(f"{repo_type}s", org, name)
    days = parse_period(period, state)
    found = await (await state.reader()).repo_counts(ref.repo_type, ref.repo, days.start, days.end, state.today())
    if found is None:
        raise NotFound(REPO_NOT_FOUND)
    return ref, days, found


Answer = Any  # the coroutine of one of the two answers below


async def point(request: Request, period: str, repo_type: str, org: str | None, name: str) -> JsonResponse:
    ref, days, found = await _counts(request.app.state.api, period, repo_type, org, name)
    return JsonResponse({"downloads": sum(found.daily.values()), "start": days.start.isoformat(),
                         "end": days.end.isoformat(), "id": ref.repo})


async def range_(request: Request, period: str, repo_type: str, org: str | None, name: str) -> JsonResponse:
    ref, days, found = await _counts(request.app.state.api, period, repo_type, org, name)
    return JsonResponse({"start": days.start.isoformat(), "end": days.end.isoformat(), "id": ref.repo,
                         "downloads": [{"day": day, "downloads": n} for day, n in found.daily.items()]})


def npm_router() -> APIRouter:
    """``point`` and ``range``, each for ``org/name`` ids and legacy ones."""
    router = APIRouter()
    for kind, answer, model, summary in (("point", point, PointAnswer, "Downloads over a period, npm-style"),
                                         ("range", range_, RangeAnswer, "Downloads per day over a period")):
        _add(router, kind, answer, model, summary)
    return router


def _add(router: APIRouter, kind: str, answer: Answer, model: type, summary: str) -> None:
    async def with_org(request: Request, period: str, type: str, org: str, name: str) -> JsonResponse:
        return await answer(request, period, type, org, name)

    async def legacy(request: Request, period: str, type: str, name: str) -> JsonResponse:
        return await answer(request, period, type, None, name)

    for path, handler, which in ((f"/api/downloads/{kind}/{{period}}/{{type}}/{{org}}/{{name}}", with_org, ""),
                                 (f"/api/downloads/{kind}/{{period}}/{{type}}/{{name}}", legacy, "_legacy")):
        router.add_api_route(path, handler, methods=["GET"], response_model=model, summary=summary,
                             tags=["downloads"], responses=ERRORS, operation_id=f"npm_{kind}{which}")
