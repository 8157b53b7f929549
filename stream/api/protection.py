"""What keeps one client from hurting the API: bounded requests, a time limit, browser headers, CORS.

- A query string over :data:`stream.api.validation.MAX_QUERY_BYTES` is refused (414)
  before anything reads it (uvicorn already caps the request line and headers at 16 KiB;
  the API takes no request bodies).
- Every request has ``request_timeout_seconds`` to finish. One that has not started its
  answer by then gets a JSON 503; a streamed answer (the CSV export) that runs over is cut
  off, and the missing end of its chunked body tells the client so.
- Every answer carries security headers; the dashboard's content security policy allows
  its own scripts and styles from ``/static`` and nothing inline or from elsewhere.
- CORS is off (browsers on other origins cannot read answers) unless origins are listed.
"""

from __future__ import annotations

import asyncio
from typing import Final

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stream.api.errors import error_response
from stream.api.validation import MAX_QUERY_BYTES
from stream.settings import AccessSettings

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS: Final = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class Protection:
    """The ASGI middleware of the module doc: query size, time limit, security headers."""

    def __init__(self, app: ASGIApp, *, timeout_seconds: float):
        self.app = app
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), *SECURITY_HEADERS]
            await send(message)

        if len(scope.get("query_string", b"")) > MAX_QUERY_BYTES:
            await error_response(414, f"the query string is longer than {MAX_QUERY_BYTES} bytes")(
                scope, receive, send_with_headers)
            return
        try:
            async with asyncio.timeout(self.timeout_seconds) as deadline:
                await self.app(scope, receive, send_with_headers)
        except TimeoutError:
            if started or not deadline.expired():
                raise  # mid-stream: let the server drop the connection (the body ends incomplete)
            await error_response(503, f"the request took longer than {self.timeout_seconds:g} s; retry later")(
                scope, receive, send_with_headers)


def install_protection(app: FastAPI, settings: AccessSettings) -> None:
    """Add the protection middleware, and CORS outside it when origins are configured."""
    app.add_middleware(Protection, timeout_seconds=settings.request_timeout_seconds)
    if settings.origins:
        # Tokens travel in a header, never in cookies: no credentials mode.
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.origins), allow_methods=["GET"],
                           allow_headers=["Authorization"], expose_headers=["Retry-After", "Content-Disposition"],
                           max_age=600)
