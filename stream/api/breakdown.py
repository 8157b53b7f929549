"""An organisation's download breakdown as CSV, in the Hub's publisher-analytics format.

``repoType,repoName,total,timestamp,downloads``: one row per repo and UTC day with a
non-zero count, ``total`` being the repo's all-time downloads, ordered by repo type, repo
name, then day; with ``rulesVersion=true`` a last column says the download rules
version(s) that counted the day (``+``-separated). The body is streamed: repos are read a chunk at a time (one pipelined
round trip each) and written out before the next chunk is read, so an organisation with
thousands of repos and a year of days never sits in memory as a whole.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from stream.api.errors import NotFound
from stream.api.schemas import ERRORS
from stream.api.state import ApiState, get_state
from stream.api.validation import check_org, optional_day_range, parse_flag
from stream.store import keys
from stream.store.reader import CounterReader
from stream.store.rule_versions import day_field, read_shard_rules

HEADER = ("repoType", "repoName", "total", "timestamp", "downloads")
CHUNK_REPOS = 200
ORG_NOT_FOUND = "Organization not found"

State = Annotated[ApiState, Depends(get_state)]
Start = Annotated[str | None, Query(description="First day, YYYY-MM-DD (UTC); default: every day counted")]
End = Annotated[str | None, Query(description="Last day, YYYY-MM-DD (UTC), included; default: today")]
Versions = Annotated[str | None, Query(alias="rulesVersion",
                                       description="true: add the rules version(s) that counted each day")]


def day_timestamp(day: str) -> str:
    """The Hub's timestamp of a UTC day: midnight, milliseconds, ``Z``."""
    return f"{day}T00:00:00.000Z"


async def breakdown_rows(reader: CounterReader, repo_keys: Sequence[str], days: Sequence[str] | None,
                         chunk: int = CHUNK_REPOS, versions: bool = False) -> AsyncIterator[str]:
    """The CSV text, header first, then one piece per chunk of ``chunk`` repos.

    ``repo_keys`` are ``type:org/name`` keys in the order wanted; ``days`` restricts the
    rows to those days (None: every day the repo has a count for); ``versions`` adds the
    ``rulesVersion`` column.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: CRLF line ends, quotes only where needed
    writer.writerow((*HEADER, "rulesVersion") if versions else HEADER)
    shards = await reader.shards() if versions else None
    recorded = [rules.days for rules in await read_shard_rules(reader.client, shards)] if shards else []
    for begin in range(0, len(repo_keys), chunk):
        for counts in await reader.days_many(repo_keys[begin:begin + chunk], days):
            rows = [(counts.repo_type, counts.repo, counts.downloads_all_time, day_timestamp(day), n)
                    for day, n in counts.daily.items() if n]
            if shards:
                mine = recorded[keys.shard_of(f"{counts.repo_type}:{counts.repo}", shards)]
                rows = [(*row, "+".join(mine.get(day_field(counts.repo_type, day), ()))) for row, day in
                        zip(rows, [d for d, n in counts.daily.items() if n], strict=True)]
            writer.writerows(rows)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()  # an organisation without repos still gets its header


def breakdown_router() -> APIRouter:
    """``GET /api/organizations/{org}/download-breakdown``."""
    router = APIRouter()

    @router.get("/api/organizations/{org}/download-breakdown", tags=["organizations"], responses={
        **ERRORS, 200: {"content": {"text/csv": {}}, "description": "repoType,repoName,total,timestamp,downloads"}},
        response_class=StreamingResponse, summary="Daily downloads of every repo of an organisation, as CSV")
    async def download_breakdown(state: State, org: str, start: Start = None, end: End = None,
                                 versions: Versions = None) -> StreamingResponse:
        name = check_org(org)
        days = optional_day_range(start, end, state.today())
        with_versions = parse_flag(versions, "rulesVersion")
        reader = await state.reader()
        repo_keys = await reader.org_repo_keys(name)
        if not repo_keys:
            raise NotFound(ORG_NOT_FOUND)
        span = f"{days.start.isoformat()}_{days.end.isoformat()}" if days else "all"
        return StreamingResponse(
            breakdown_rows(reader, repo_keys, days.days() if days else None, versions=with_versions),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}-downloads-{span}.csv"'})

    return router
