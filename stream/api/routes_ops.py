"""Operations endpoints: ``/healthz`` (the process answers), ``/readyz`` (Redis answers)
and ``/metrics`` (Prometheus text)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from redis.exceptions import RedisError

from stream.api.responses import JsonResponse
from stream.api.state import ApiState
from stream.errors import ConfigError


def ops_router() -> APIRouter:
    """Liveness, readiness and metrics."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> JsonResponse:
        return JsonResponse({"ok": True})

    @router.get("/readyz", summary="Redis is reachable", responses={503: {"description": "Redis is unreachable"}})
    async def readyz(request: Request) -> JsonResponse:
        state: ApiState = request.app.state.api
        try:
            await (await state.reader()).client.ping()
        except (RedisError, OSError, ConfigError) as exc:  # OSError covers StoreUnavailable
            return JsonResponse({"ready": False, "error": f"Redis unreachable: {exc}"}, status_code=503)
        return JsonResponse({"ready": True})

    @router.get("/metrics", summary="Prometheus metrics of this process", response_class=Response)
    async def metrics(request: Request) -> Response:
        body = request.app.state.metrics.render()
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    return router
