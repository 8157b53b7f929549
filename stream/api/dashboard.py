"""The dashboard: one HTML page at ``/`` and its static files under ``/static``.

Everything it needs is served from this package (hand-written JS and SVG charts, system
fonts): the page loads nothing from outside the machine.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"


def mount_dashboard(app: FastAPI) -> None:
    """Serve ``/`` (the page) and ``/static/*`` (its scripts and styles)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def index() -> FileResponse:
        # no-cache: a deploy must not leave browsers on an old page with a new API
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
