"""What a repo's downloads say: ``/api/{models|datasets}/[{org}/]{name}/downloads/...``.

``breakdown`` (by class, client, country or file; ``.csv`` for one row per day and value),
``uniques`` (distinct downloaders) and, for models, ``uncounted`` (the candidate requests
the rules did not count, with the rule in words). These are the organisation's
publisher analytics: :mod:`stream.api.access` keeps them private to it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from stream.api.errors import BadRequest, NotFound
from stream.api.responses import JsonResponse
from stream.api.routes_repos import _RANGE_DOC, REPO_NOT_FOUND
from stream.api.schemas import ERRORS, BreakdownAnswer, UncountedPath, UniquesAnswer
from stream.api.state import ApiState
from stream.api.validation import REPO_TYPE_OF_SEGMENT, DayRange, RepoRef, day_range, repo_ref
from stream.store.analytics import DIMENSIONS, OTHER, Breakdown

CSV_HEADER = ("repoType", "repoName", "date", "dimension", "value", "downloads")
_BY_DOC = {"name": "by", "in": "query", "required": True, "schema": {"type": "string", "enum": list(DIMENSIONS)},
           "description": "What to break the downloads down by: traffic class, client, country or file"}
_DAYS_DOC = {"name": "days", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": 31, "default": 30},
             "description": "Days ending today (UTC) to look back over"}


def parse_dimension(value: str | None) -> str:
    """One of :data:`DIMENSIONS`."""
    if value not in DIMENSIONS:
        shown = repr(value[:40]) if value else "nothing"
        raise BadRequest(f"by={shown}: expected one of {', '.join(DIMENSIONS)}")
    return value


def parse_days(value: str | None, default: int = 30, most: int = 31) -> int:
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= most:
        raise BadRequest(f"days={value[:20]!r}: expected a whole number from 1 to {most}")
    return int(value)


def shown_value(value: str) -> str | None:
    """A breakdown value as the API shows it: the folded rest ("other") is null."""
    return None if value == OTHER else value


async def _read_breakdown(state: ApiState, segment: str, org: str | None, name: str,
                          query: Any) -> tuple[RepoRef, str, DayRange, Breakdown]:
    """The request's repo, dimension and days, and the breakdown read (input checked first)."""
    ref = repo_ref(segment, org, name)
    dimension = parse_dimension(query.get("by"))
    days = day_range(query.get("start"), query.get("end"), state.today())
    found = await (await state.analytics()).breakdown(ref.key, days.start, days.end, dimension)
    if found is None:
        raise NotFound(REPO_NOT_FOUND)
    return ref, dimension, days, found


async def breakdown(state: ApiState, segment: str, org: str | None, name: str, query: Any) -> JsonResponse:
    ref, dimension, days, found = await _read_breakdown(state, segment, org, name, query)
    return JsonResponse({
        "id": ref.repo, "repoType": ref.repo_type, "start": days.start.isoformat(), "end": days.end.isoformat(),
        "by": dimension, "total": found.total,
        "values": [{"value": shown_value(v), "downloads": n} for v, n in found.values]})


async def breakdown_csv(state: ApiState, segment: str, org: str | None, name: str, query: Any) -> StreamingResponse:
    ref, dimension, days, found = await _read_breakdown(state, segment, org, name, query)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    writer.writerows((ref.repo_type, ref.repo, day, dimension, value, n)  # the folded rest: an empty value
                     for day, values in sorted(found.daily.items()) for value, n in values)
    span = f"{days.start.isoformat()}_{days.end.isoformat()}"
    filename = f"{ref.repo.replace('/', '_')}-{dimension}-{span}.csv"
    return StreamingResponse(iter([buffer.getvalue()]), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})


async def uniques(state: ApiState, segment: str, org: str | None, name: str, query: Any) -> JsonResponse:
    ref = repo_ref(segment, org, name)
    days = day_range(query.get("start"), query.get("end"), state.today())
    found = await (await state.analytics()).uniques(ref.key, days.start, days.end)
    if found is None:
        raise NotFound(REPO_NOT_FOUND)
    return JsonResponse({
        "id": ref.repo, "repoType": ref.repo_type, "start": days.start.isoformat(), "end": days.end.isoformat(),
        "uniqueDownloaders": found.total,
        "daily": [{"date": day, "uniqueDownloaders": n} for day, n in found.daily.items()]})


async def uncounted(state: ApiState, segment: str, org: str | None, name: str, query: Any) -> JsonResponse:
    ref = repo_ref(segment, org, name)
    span = parse_days(query.get("days"))
    today = state.today()
    found = await (await state.analytics()).uncounted(ref.key, today - timedelta(days=span - 1), today)
    if found is None:
        raise NotFound(REPO_NOT_FOUND)
    return JsonResponse([{"path": shown_value(u.path), "requests": u.requests,
                          "rule": state.explain_uncounted(u.library, u.path)} for u in found])


Handler = Callable[[ApiState, str, str | None, str, Any], Awaitable[Any]]


def analytics_router() -> APIRouter:
    """The analytics routes of models and datasets (uncounted: models only)."""
    router = APIRouter()
    for segment in REPO_TYPE_OF_SEGMENT:
        kind = segment[:-1]
        routes: list[tuple[str, Handler, Any, str, list[dict[str, Any]]]] = [
            ("breakdown", breakdown, BreakdownAnswer, f"A {kind}'s downloads by class, client, country or file",
             [_BY_DOC, *_RANGE_DOC]),
            ("breakdown.csv", breakdown_csv, None, f"A {kind}'s downloads per day by one dimension, as CSV",
             [_BY_DOC, *_RANGE_DOC]),
            ("uniques", uniques, UniquesAnswer, f"Distinct downloaders of a {kind}", _RANGE_DOC),
        ]
        if kind == "model":
            routes.append(("uncounted", uncounted, list[UncountedPath],
                           "Requests for a model's files that were download candidates but did not count, "
                           "and the rule that decided", [_DAYS_DOC]))
        for leaf, handler, model, summary, params in routes:
            _add(router, segment, leaf, handler, model, summary, params)
    return router


def _add(router: APIRouter, segment: str, leaf: str, handler: Handler, model: Any, summary: str,
         params: list[dict[str, Any]]) -> None:
    async def with_org(request: Request, org: str, name: str) -> Any:
        return await handler(request.app.state.api, segment, org, name, request.query_params)

    async def legacy(request: Request, name: str) -> Any:
        return await handler(request.app.state.api, segment, None, name, request.query_params)

    csv_answer = {200: {"content": {"text/csv": {}}, "description": ",".join(CSV_HEADER)}} if model is None else {}
    for path, endpoint, which in ((f"/api/{segment}/{{org}}/{{name}}/downloads/{leaf}", with_org, ""),
                                  (f"/api/{segment}/{{name}}/downloads/{leaf}", legacy, " (legacy id, no org)")):
        router.add_api_route(
            path, endpoint, methods=["GET"], response_model=model, summary=summary + which, tags=[segment],
            responses={**ERRORS, **csv_answer},
            operation_id=f"{handler.__name__}_{segment}{'_legacy' if endpoint is legacy else ''}",
            openapi_extra={"parameters": params}, response_class=StreamingResponse if model is None else JsonResponse)

