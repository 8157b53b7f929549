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
    downloadsAllTime: int | None = Field(None, description="Downloads since counting began")


class DailyCount(BaseModel):
    date: str = Field(examples=["2026-11-22"])
    downloads: int


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


class Error(BaseModel):
    error: str = Field(examples=["Repository not found"])


ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": Error, "description": "Malformed input"},
          404: {"model": Error, "description": "Nothing counted under this id"},
          503: {"model": Error, "description": "Redis is unreachable"}}
