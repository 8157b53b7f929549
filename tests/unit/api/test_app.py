"""The app without Redis: bad input is refused before any key is built, ops endpoints,
the OpenAPI description, metrics labels, and a dashboard that loads nothing from elsewhere."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest

from stream.api import create_app
from stream.api.dashboard import STATIC_DIR
from stream.devstack import free_port

pytestmark = pytest.mark.unit


def get(*paths: str) -> list[httpx.Response]:
    """GET each path from a fresh app whose Redis does not exist (nothing listens there)."""
    app = create_app(f"redis://127.0.0.1:{free_port()}/0")

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            return [await client.get(p) for p in paths]
    return asyncio.run(run())


@pytest.mark.parametrize("path", [
    "/api/models/a--b/c", "/api/models/org/*", "/api/datasets/org/na..me/downloads",
    "/api/models/org/name/downloads?start=2026-11-22&end=2026-11-01", "/api/models?limit=1001",
    "/api/models?sort=trending",
])
def test_bad_input_is_refused_without_touching_redis(path: str) -> None:
    # With no Redis at all these are 400s, not 503s: the check comes first.
    [reply] = get(path)
    assert reply.status_code == 400
    assert list(reply.json()) == ["error"]


def test_store_outage_is_a_json_503() -> None:
    [reply] = get("/api/models/org/name")
    assert reply.status_code == 503
    assert "unavailable" in reply.json()["error"]


def test_liveness_does_not_need_redis_but_readiness_does() -> None:
    health, ready = get("/healthz", "/readyz")
    assert health.status_code == 200
    assert ready.status_code == 503 and ready.json()["ready"] is False


def test_unknown_paths_are_json_404s() -> None:
    [reply] = get("/api/nothing/here")
    assert reply.status_code == 404 and "error" in reply.json()


def test_openapi_exists_and_swagger_ui_is_not_served() -> None:
    spec, docs, redoc = get("/openapi.json", "/docs", "/redoc")
    assert spec.status_code == 200 and spec.json()["info"]["title"] == "hubcounter API"
    assert docs.status_code == 404 and redoc.status_code == 404


def test_metrics_are_labelled_by_route_template_not_by_id() -> None:
    # Ids would make one time series per repo: the label is the route's pattern.
    *_, metrics = get("/api/models/a--b/one", "/api/models/a--b/two", "/metrics")
    text = metrics.text
    assert 'route="/api/models/{org}/{name}",status="400"} 2.0' in text
    assert "a--b" not in text


def test_the_dashboard_page_and_its_files_are_served() -> None:
    page, script, style = get("/", "/static/dashboard.js", "/static/dashboard.css")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for name in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        assert (STATIC_DIR / Path(name).name).exists(), name
    assert script.status_code == 200 and style.status_code == 200


def test_no_static_file_refers_to_another_host() -> None:
    # No CDN scripts, fonts or images: the only absolute URL allowed is the SVG namespace.
    for path in STATIC_DIR.iterdir():
        urls = set(re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s\"')]*", path.read_text()))
        assert urls <= {"http://www.w3.org/2000/svg"}, (path.name, urls)
