"""What the access layer shows: ``GET /api/whoami`` and the access marks of the OpenAPI document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request

from stream.api.responses import JsonResponse
from stream.api.tokens import Token
from stream.settings import AccessSettings

if TYPE_CHECKING:
    from stream.api.access import Rule


def whoami_router(settings: AccessSettings) -> APIRouter:
    """``GET /api/whoami``: what the request's token covers (the dashboard checks a pasted token with it)."""
    router = APIRouter(tags=["access"])

    @router.get("/api/whoami", summary="The request's token: its name, organisations and expiry")
    async def whoami(request: Request) -> JsonResponse:
        token: Token | None = request.state.token
        body: dict[str, Any] = {"authenticated": token is not None, "privateEndpoints": not settings.public_only}
        if token is not None:
            body.update(name=token.name, orgs=list(token.orgs),
                        expires=token.expires.isoformat() if token.expires else None)
        return JsonResponse(body)

    return router


_ERROR_BODY = {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}}


def document_access(app: FastAPI, rules: Mapping[str, Rule], public_only: bool) -> None:
    """Mark every operation of the OpenAPI document ``x-access: public|private``, with the
    bearer scheme and the 401/403/429 answers the layer adds (public-only: without the private ones)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
            "type": "http", "scheme": "bearer",
            "description": "A token from `hubcounter tokens create --org ORG`; it covers the organisations named "
                           "at creation (`*`: every one)."}
        paths = schema.get("paths", {})
        for path, item in list(paths.items()):
            rule = rules[path]
            if rule.private and public_only:
                del paths[path]
                continue
            for operation in item.values():
                operation["x-access"] = "private" if rule.private else "public"
                answers = operation.setdefault("responses", {})
                if rule.private:
                    operation["security"] = [{"bearer": []}]
                    answers["401"] = {"description": "No token, or one unknown, expired or revoked",
                                      "content": _ERROR_BODY}
                    answers["403"] = {"description": "The token does not cover this organisation",
                                      "content": _ERROR_BODY}
                if rule.limited:
                    answers["429"] = {"description": "Rate limit exceeded; see Retry-After", "content": _ERROR_BODY}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
