"""Response shapes, for the OpenAPI description only.

Handlers return :class:`stream.api.responses.JsonResponse` directly (no per-request
pydantic serialisation on the hot path); these models document what they send.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class RepoInfo(BaseModel):
    id: str = Field(examples=["openai-community/gpt2"])
    downloads: int | None = Field(None, description="Downloads over the last 30 UTC days, today included")
    downloadsExcludingCI: int | None = Field(None, description="The same, without the ci and bot traffic classes")
    downloadsAllTime: int | None = Field(None, description="Downloads since counting began")


class DailyCount(BaseModel):
    date: str = Field(examples=["2026-11-22"])
    downloads: int
    rulesVersion: str | None = Field(None, examples=["9d7fd5f0ec1e"], description=(
        "With rulesVersion=true: the download rules version(s) that counted that day, comma-separated"))


class RepoDownloads(BaseModel):
    id: str
    repoType: str = Field(examples=["model"])
    start: str
    end: str
    daily: list[DailyCount]


class ListedRepo(BaseModel):
    id: str
    downloads: int = Field(description="Downloads over the last 30 UTC days")
    downloadsAllTime: int | None = Field(None, description="Present when sorted by downloadsAllTime")


class BreakdownValue(BaseModel):
    value: str | None = Field(description="A class, client, country or file; null for the rest, summed")
    downloads: int


class BreakdownAnswer(BaseModel):
    id: str
    repoType: str
    start: str
    end: str
    by: str = Field(examples=["client"])
    total: int = Field(description="Downloads over the range: the values sum to it")
    values: list[BreakdownValue] = Field(description="Most downloads first; at most the top values kept per day "
                                                     "(50 by default), the rest as one null value")


class DailyUniques(BaseModel):
    date: str
    uniqueDownloaders: int


class UniquesAnswer(BaseModel):
    id: str
    repoType: str
    start: str
    end: str
    uniqueDownloaders: int = Field(description="Distinct downloaders over the range (HyperLogLog: about 0.81% "
                                               "standard error); anonymous requests are not in it")
    daily: list[DailyUniques]


class UncountedPath(BaseModel):
    path: str | None = Field(description="The file requested; null for the other paths, summed")
    requests: int
    rule: str = Field(description="Why such a request did not count")


class PointAnswer(BaseModel):
    downloads: int
    start: str
    end: str
    id: str


class RangeDay(BaseModel):
    day: str
    downloads: int


class RangeAnswer(BaseModel):
    start: str
    end: str
    id: str
    downloads: list[RangeDay]


class Error(BaseModel):
    error: str = Field(examples=["Repository not found"])


ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": Error, "description": "Malformed input"},
          404: {"model": Error, "description": "Nothing counted under this id"},
          503: {"model": Error, "description": "Redis is unreachable"}}
