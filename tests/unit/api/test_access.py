"""The access layer without Redis: every route classified, refusals that come before any
Redis call, public-only mode, request limits, security headers and CORS.

With no Redis listening, the rate limiter lets requests through (it cannot count them)
and counter reads answer 503; what is checked here needs neither.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from stream.api import access, create_app
from stream.api.dashboard import STATIC_DIR
from stream.api.validation import MAX_QUERY_BYTES
from stream.devstack import free_port
from stream.errors import ConfigError
from stream.settings import AccessSettings

pytestmark = pytest.mark.unit

PRIVATE = "/api/organizations/acme/download-breakdown"


def app_without_redis(**changes: Any) -> FastAPI:
    return create_app(f"redis://127.0.0.1:{free_port()}/0", access=AccessSettings.defaults(**changes))


def call(app: FastAPI, *requests: tuple[str, str, dict[str, str]]) -> list[httpx.Response]:
    """(method, path, headers) requests, in order, on one in-process client."""
    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client:
            return [await client.request(method, path, headers=headers) for method, path, headers in requests]
    return asyncio.run(run())


def get(app: FastAPI, *paths: str, headers: dict[str, str] | None = None) -> list[httpx.Response]:
    return call(app, *(("GET", p, headers or {}) for p in paths))


def test_every_route_the_app_serves_is_in_the_table() -> None:
    # The table and the app agree exactly: nothing unclassified, nothing classified in vain.
    app = app_without_redis()
    assert sorted(s.path for s in access.served_routes(app.router.routes)) == sorted(access.ROUTES)


def test_a_route_added_without_a_classification_stops_the_app() -> None:
    # Added after create_app (so after its own check): the layer, built at the first
    # request, refuses to serve anything rather than serve the new route unclassified.
    app = app_without_redis()

    @app.get("/api/models/{org}/{name}/secrets")
    async def secrets(org: str, name: str) -> dict[str, str]:
        return {"org": org}

    with pytest.raises(ConfigError, match=re.escape("unclassified ['/api/models/{org}/{name}/secrets']")):
        get(app, "/healthz")


def test_one_line_in_the_table_makes_a_new_route_private(monkeypatch: pytest.MonkeyPatch) -> None:
    # What issue 12's breakdowns will do: add the route and one line; no check in the handler.
    monkeypatch.setattr(access, "ROUTES", {**access.ROUTES, "/api/models/{org}/{name}/secrets": access.ORG_PRIVATE})
    app = app_without_redis()

    @app.get("/api/models/{org}/{name}/secrets")
    async def secrets(org: str, name: str) -> dict[str, str]:
        return {"org": org}

    [reply] = get(app, "/api/models/acme/llm/secrets")
    assert reply.status_code == 401 and "private" in reply.json()["error"]


def test_a_private_route_without_a_token_is_a_401_that_says_nothing_about_the_org() -> None:
    # The same answer for any organisation name, even an impossible one: nothing is looked up.
    replies = get(app_without_redis(), PRIVATE, "/api/organizations/no-such-org/download-breakdown",
                  "/api/organizations/-x/download-breakdown")
    assert {r.status_code for r in replies} == {401}
    assert len({r.text for r in replies}) == 1
    assert replies[0].headers["www-authenticate"] == 'Bearer realm="hubcounter"'
    assert list(replies[0].json()) == ["error"]


def test_a_malformed_token_is_a_401_before_any_lookup() -> None:
    # Not "Bearer hct_<16 hex>_<43>": refused without asking Redis (which is not there).
    for header in ("Bearer nonsense", "Basic dXNlcjpwdw==", "Bearer", "hct_0123456789abcdef_" + "x" * 43):
        [reply] = get(app_without_redis(), "/api/models", headers={"Authorization": header})
        assert reply.status_code == 401, header
        assert 'error="invalid_token"' in reply.headers["www-authenticate"]


def test_public_only_serves_no_private_route() -> None:
    # A private path answers like a path that does not exist, and is not in the description.
    app = app_without_redis(public_only=True)
    private, unknown, spec = get(app, PRIVATE, "/api/nothing/here", "/openapi.json")
    assert private.status_code == unknown.status_code == 404
    assert private.json() == unknown.json()
    paths = spec.json()["paths"]
    assert not [p for p, item in paths.items() if item["get"]["x-access"] == "private"]
    assert "/api/models/{org}/{name}" in paths


def test_the_openapi_document_marks_each_operation_public_or_private() -> None:
    [spec] = get(app_without_redis(), "/openapi.json")
    document = spec.json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, item in document["paths"].items():
        operation = item["get"]
        rule = access.ROUTES[path]
        assert operation["x-access"] == ("private" if rule.private else "public"), path
        assert ("security" in operation) == rule.private, path
        assert {"401", "403"} <= set(operation["responses"]) if rule.private else True
        assert ("429" in operation["responses"]) == rule.limited, path


def test_a_query_string_over_the_limit_is_a_414() -> None:
    query = "sort=downloads&x="
    fits, over = get(app_without_redis(), f"/api/models?{query}{'a' * (MAX_QUERY_BYTES - len(query))}",
                     f"/api/models?{query}{'a' * (MAX_QUERY_BYTES - len(query) + 1)}")
    assert fits.status_code != 414  # exactly MAX_QUERY_BYTES bytes
    assert over.status_code == 414 and "query string" in over.json()["error"]


def slow_app(monkeypatch: pytest.MonkeyPatch, endpoint: Callable[..., Any]) -> FastAPI:
    """An app with one more public route, ``/slow``, and a 0.2 s time limit."""
    monkeypatch.setattr(access, "ROUTES", {**access.ROUTES, "/slow": access.PUBLIC})
    app = app_without_redis(request_timeout_seconds=0.2, rate_limit=False)
    app.get("/slow")(endpoint)
    return app


def test_a_request_over_the_time_limit_is_a_503(monkeypatch: pytest.MonkeyPatch) -> None:
    async def slow() -> dict[str, bool]:
        await asyncio.sleep(5)
        return {"done": True}

    [reply] = get(slow_app(monkeypatch, slow), "/slow")
    assert reply.status_code == 503 and reply.json() == {"error": "the request took longer than 0.2 s; retry later"}


def test_a_stream_over_the_time_limit_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    # Its status is sent already: the body must end incomplete, never look whole.
    async def chunks() -> Any:
        yield "first,row\r\n"
        await asyncio.sleep(5)
        yield "never,sent\r\n"

    async def slow() -> StreamingResponse:
        return StreamingResponse(chunks(), media_type="text/csv")

    with pytest.raises(TimeoutError):
        get(slow_app(monkeypatch, slow), "/slow")


def test_every_answer_carries_the_security_headers() -> None:
    for reply in get(app_without_redis(), "/", "/static/dashboard.js", "/healthz", PRIVATE):
        policy = reply.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["x-frame-options"] == "DENY"


def test_the_dashboard_has_no_inline_script_style_or_handler() -> None:
    # What the content security policy would refuse; Chromium runs the page under it too
    # (tests/integration/api/test_dashboard.py).
    page = (STATIC_DIR / "index.html").read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all("src=" in attributes and not body.strip() for attributes, body in scripts)
    assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=", page)
    for script in STATIC_DIR.glob("*.js"):
        text = script.read_text()
        assert not re.search(r"\beval\(|new Function\(|innerHTML|setAttribute\(\"style\"", text), script.name


def test_cors_is_off_by_default() -> None:
    reply, preflight = call(app_without_redis(), ("GET", "/healthz", {"Origin": "https://elsewhere.example"}),
                            ("OPTIONS", "/api/models", {"Origin": "https://elsewhere.example",
                                                        "Access-Control-Request-Method": "GET"}))
    assert "access-control-allow-origin" not in reply.headers
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_allows_the_configured_origins_with_a_token_header() -> None:
    app = app_without_redis(cors_origins="https://hub.example, https://mirror.example")
    allowed, other, preflight = call(
        app, ("GET", "/healthz", {"Origin": "https://hub.example"}),
        ("GET", "/healthz", {"Origin": "https://elsewhere.example"}),
        ("OPTIONS", PRIVATE, {"Origin": "https://mirror.example", "Access-Control-Request-Method": "GET",
                              "Access-Control-Request-Headers": "authorization"}))
    assert allowed.headers["access-control-allow-origin"] == "https://hub.example"
    assert "access-control-allow-origin" not in other.headers
    assert preflight.status_code == 200
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()


def test_access_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBCOUNTER_API_PUBLIC_ONLY", "true")
    monkeypatch.setenv("HUBCOUNTER_API_ADDRESS_RATE", "2.5")
    monkeypatch.setenv("HUBCOUNTER_API_CORS_ORIGINS", "https://a.example,,https://b.example ")
    settings = AccessSettings()
    assert settings.public_only and settings.address_rate == 2.5
    assert settings.origins == ("https://a.example", "https://b.example")
    assert not AccessSettings.defaults().public_only  # the defaults ignore the environment
