"""The API's errors and how they reach the client: always a JSON ``{"error": ...}``.

Errors inherit the builtin they resemble (bad input is also a ``ValueError``), like the
project's other errors, and carry the HTTP status they map to.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException

from stream.api.responses import JsonResponse
from stream.errors import HubcounterError, StoreUnavailable

log = logging.getLogger(__name__)


class ApiError(HubcounterError):
    """An error answered with ``status`` and a JSON body ``{"error": message}``."""

    status: int = 400

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class BadRequest(ApiError, ValueError):
    """Malformed input: a repo id, a date, a range, a limit or a sort value."""

    status = 400


class NotFound(ApiError, LookupError):
    """Nothing is counted under this id (the Hub answers the same for private repos)."""

    status = 404


def error_response(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status_code=status)


def install_handlers(app: FastAPI) -> None:
    """Map every error the API can meet to a JSON answer with a fitting status."""

    async def api_error(_: Request, exc: Exception) -> JsonResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.message)

    async def invalid_request(_: Request, exc: Exception) -> JsonResponse:
        assert isinstance(exc, RequestValidationError)
        # FastAPI's own 422 body is a list of pydantic errors; one readable line is kinder.
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ())[1:]) or "request"
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        return error_response(400, "; ".join(problems) or "invalid request")

    async def http_error(_: Request, exc: Exception) -> JsonResponse:
        assert isinstance(exc, HTTPException)
        return error_response(exc.status_code, str(exc.detail))

    async def store_down(_: Request, exc: Exception) -> JsonResponse:
        log.warning("counter store unavailable: %s", exc)
        return error_response(503, "the counter store is unavailable; retry later")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)
    for kind in (RedisConnectionError, RedisTimeoutError, StoreUnavailable):
        app.add_exception_handler(kind, store_down)
