"""Every endpoint of the read API against a Redis filled by the real worker.

One simulated log is counted once for the module; each test compares what the API says
with the batch reference over the same log (``stream.reference``).
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest

from stream.api import create_app
from stream.devstack import Stack, free_port
from tests.integration.api.support import ApiClient, Filled, assert_top, fill, pinned_app, ranked

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def filled(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Filled:
    return fill(stack, tmp_path_factory.mktemp("api"), "api", seed=21, events=25_000)


@pytest.fixture(scope="module")
def api(filled: Filled, api_client_factory: Any) -> ApiClient:
    return api_client_factory(pinned_app(filled))


@pytest.fixture(scope="module")
def operator(api: ApiClient) -> dict[str, str]:
    """The header of an operator token (``*``): the CSV breakdown is private (test_access.py checks who may)."""
    token, _ = api.call(lambda: api.app.state.tokens.create(["*"], "test-api-operator"))
    return {"Authorization": f"Bearer {token}"}


# -- one repo --------------------------------------------------------------------------------

def test_every_repo_lookup_matches_the_reference(filled: Filled, api: ApiClient) -> None:
    # The Hub's shape for every counted model and dataset: 30-day and all-time downloads.
    assert {k.split(":")[0] for k in filled.expected} == {"model", "dataset"}
    for key, data in filled.expected.items():
        repo_type, _, repo = key.partition(":")
        reply = api.get(f"/api/{repo_type}s/{repo}?expand[]=downloads&expand[]=downloadsAllTime")
        assert reply.status_code == 200, (key, reply.text)
        assert reply.json() == {"id": repo, "downloads": filled.last30(key),
                                "downloadsAllTime": data["downloadsAllTime"]}


def test_expand_returns_only_the_fields_asked_for(filled: Filled, api: ApiClient) -> None:
    # Like the Hub: expand[] selects fields; no expand returns both.
    repo, data = next(iter(filled.of_type("model").items()))
    assert api.get(f"/api/models/{repo}?expand[]=downloadsAllTime").json() == {
        "id": repo, "downloadsAllTime": data["downloadsAllTime"]}
    assert set(api.get(f"/api/models/{repo}").json()) == {"id", "downloads", "downloadsExcludingCI", "downloadsAllTime"}


def test_legacy_repo_without_an_organisation(filled: Filled, api: ApiClient) -> None:
    # Old repos have no org (/api/models/gpt2): both routes answer for them.
    legacy = [r for r in filled.of_type("model") if "/" not in r]
    assert legacy, "the simulation should count some legacy repos"
    repo = legacy[0]
    info = api.get(f"/api/models/{repo}").json()
    assert info["downloadsAllTime"] == filled.expected[f"model:{repo}"]["downloadsAllTime"]
    series = api.get(f"/api/models/{repo}/downloads").json()
    assert series["id"] == repo and len(series["daily"]) == 30


def test_unknown_repo_is_a_json_404(api: ApiClient) -> None:
    # A repo nobody downloaded has no counter: the Hub's "Repository not found".
    for path in ("/api/models/nobody/nothing", "/api/datasets/nothing", "/api/models/nobody/nothing/downloads"):
        reply = api.get(path)
        assert reply.status_code == 404
        assert reply.json() == {"error": "Repository not found"}


def test_daily_series_defaults_to_the_last_30_days_zero_filled(filled: Filled, api: ApiClient) -> None:
    # Without parameters: 30 days ending today, every day present, counts from the reference.
    repo, _ = ranked(filled, "model")[0]
    body = api.get(f"/api/models/{repo}/downloads").json()
    days = [(filled.today - timedelta(days=29 - i)).isoformat() for i in range(30)]
    assert (body["id"], body["repoType"], body["start"], body["end"]) == (repo, "model", days[0], days[-1])
    daily = filled.expected[f"model:{repo}"]["daily"]
    assert body["daily"] == [{"date": d, "downloads": daily.get(d, 0)} for d in days]


def test_daily_series_over_an_explicit_range(filled: Filled, api: ApiClient) -> None:
    # Both ends inclusive; days before the first event are zeros.
    repo, data = next(iter(filled.of_type("dataset").items()))
    start, end = filled.today - timedelta(days=9), filled.today
    body = api.get(f"/api/datasets/{repo}/downloads", params={"start": start.isoformat(),
                                                               "end": end.isoformat()}).json()
    assert body["repoType"] == "dataset"
    assert len(body["daily"]) == 10
    assert {d["date"]: d["downloads"] for d in body["daily"] if d["downloads"]} == data["daily"]


# -- listings --------------------------------------------------------------------------------

@pytest.mark.parametrize("repo_type", ["model", "dataset"])
def test_top_of_the_last_30_days(filled: Filled, api: ApiClient, repo_type: str) -> None:
    # The listing's order and numbers are the reference's ranking.
    body = api.get(f"/api/{repo_type}s", params={"sort": "downloads", "limit": 25}).json()
    assert all(set(item) == {"id", "downloads"} for item in body)
    assert_top([(i["id"], i["downloads"]) for i in body], ranked(filled, repo_type), 25)


@pytest.mark.parametrize("all_time", [False, True])
@pytest.mark.parametrize("limit", [1, 7, 100, 1000])
def test_leaders_read_less_but_equal_the_full_top(filled: Filled, api: ApiClient, limit: int, all_time: bool) -> None:
    # The two-phase read ranks like reading `limit` entries of every shard, and like the reference.
    reader = api.call(api.app.state.api.reader)
    for repo_type in ("model", "dataset"):
        fast = api.call(lambda t=repo_type: reader.leaders(t, limit, all_time=all_time, today=filled.today))
        full = api.call(lambda t=repo_type: reader.top((t,), limit, all_time=all_time, today=filled.today))
        expected = ranked(filled, repo_type, all_time)
        assert len(fast) == len(full) == min(limit, len(expected))
        assert_top([(r.repo, r.downloads) for r in fast], expected, limit)
        assert_top([(r.repo, r.downloads) for r in full], expected, limit)


def test_top_of_all_time(filled: Filled, api: ApiClient) -> None:
    body = api.get("/api/models", params={"sort": "downloadsAllTime", "limit": 10}).json()
    assert_top([(i["id"], i["downloadsAllTime"]) for i in body], ranked(filled, "model", all_time=True), 10)
    assert all(i["downloads"] == filled.last30(f"model:{i['id']}") for i in body)


def test_top_of_one_author(filled: Filled, api: ApiClient) -> None:
    # author= reads the org index: every counted repo of the org, in the reference's order.
    org, keys = next(iter(filled.orgs().items()))
    models = sorted(((k.partition(":")[2], filled.last30(k)) for k in keys if k.startswith("model:")),
                    key=lambda rv: (-rv[1], rv[0]))
    body = api.get("/api/models", params={"author": org, "limit": 1000}).json()
    assert [(i["id"], i["downloads"]) for i in body] == models
    assert len(api.get("/api/models", params={"author": org, "limit": 2}).json()) == min(2, len(models))
    assert api.get("/api/models", params={"author": "no-such-org"}).json() == []


# -- the CSV breakdown -------------------------------------------------------------------------

def breakdown(api: ApiClient, auth: dict[str, str], org: str, **params: str) -> list[dict[str, str]]:
    reply = api.get(f"/api/organizations/{org}/download-breakdown", params=params, headers=auth)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/csv")
    reader = csv.reader(io.StringIO(reply.text))
    assert next(reader) == ["repoType", "repoName", "total", "timestamp", "downloads"]
    return [dict(zip(("repoType", "repoName", "total", "timestamp", "downloads"), row, strict=True))
            for row in reader]


def expected_rows(filled: Filled, org: str, first: str = "", last: str = "9999") -> list[dict[str, str]]:
    rows = []
    for key in sorted(filled.orgs()[org]):
        repo_type, _, repo = key.partition(":")
        data = filled.expected[key]
        rows += [{"repoType": repo_type, "repoName": repo, "total": str(data["downloadsAllTime"]),
                  "timestamp": f"{day}T00:00:00.000Z", "downloads": str(n)}
                 for day, n in sorted(data["daily"].items()) if n and first <= day <= last]
    return rows


def test_breakdown_csv_matches_the_reference(filled: Filled, api: ApiClient, operator: dict[str, str]) -> None:
    # Models and datasets of the org, one row per non-zero day, ordered by repo then day.
    for org in list(filled.orgs())[:3]:
        assert breakdown(api, operator, org) == expected_rows(filled, org)


def test_breakdown_over_a_range(filled: Filled, api: ApiClient, operator: dict[str, str]) -> None:
    org = next(iter(filled.orgs()))
    day = (filled.today - timedelta(days=1)).isoformat()
    rows = breakdown(api, operator, org, start=day, end=day)
    assert rows == expected_rows(filled, org, day, day)
    assert rows, "the busiest org should have downloads yesterday"


def test_breakdown_of_an_unknown_org_is_a_json_404(api: ApiClient, operator: dict[str, str]) -> None:
    # To an operator; anyone else learns nothing about which organisations exist (test_access.py).
    reply = api.get("/api/organizations/no-such-org/download-breakdown", headers=operator)
    assert reply.status_code == 404
    assert "error" in reply.json()


# -- bad input ---------------------------------------------------------------------------------

BAD_REQUESTS = [
    "/api/models/-org/name", "/api/models/org./name", "/api/models/a--b/name", "/api/models/org/na..me",
    f"/api/models/org/{'x' * 97}", "/api/models/org/na%20me", "/api/models/%C3%BCber/name", "/api/models/org/*",
    "/api/models/org%5B1%5D/name", "/api/datasets/{org}/x", "/api/models/.hidden",
    "/api/models/org/name?expand[]=likes",
    "/api/models/org/name/downloads?start=2026-13-01", "/api/models/org/name/downloads?start=20261122",
    "/api/models/org/name/downloads?end=2026-11-22T00:00:00", "/api/models/org/name/downloads?start=yesterday",
    "/api/models/org/name/downloads?start=2026-11-10&end=2026-11-01",
    "/api/models/org/name/downloads?start=2025-01-01&end=2026-02-05",
    "/api/models?limit=1001", "/api/models?limit=0", "/api/models?limit=ten", "/api/models?sort=likes",
    "/api/datasets?sort=downloads&author=a..b",
    "/api/organizations/a--b/download-breakdown", "/api/organizations/org/download-breakdown?start=2026-02-30",
    "/api/organizations/org/download-breakdown?start=2024-01-01&end=2026-01-01",
]


@pytest.mark.parametrize("path", BAD_REQUESTS)
def test_bad_input_is_a_clear_json_400(api: ApiClient, operator: dict[str, str], path: str) -> None:
    # Checked before any key is built: an id that is no Hub name never reaches Redis.
    reply = api.get(path, headers=operator)
    assert reply.status_code == 400, reply.text
    body = reply.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]


def test_a_400_day_range_is_the_longest_allowed(filled: Filled, api: ApiClient) -> None:
    repo, _ = ranked(filled, "model")[0]
    start = (filled.today - timedelta(days=399)).isoformat()
    body = api.get(f"/api/models/{repo}/downloads", params={"start": start}).json()
    assert len(body["daily"]) == 400


# -- dashboard data, operations, description ----------------------------------------------------

def test_dashboard_top_has_the_daily_series(filled: Filled, api: ApiClient) -> None:
    body = api.get("/api/pipeline/top", params={"repoType": "model", "limit": 5}).json()
    assert_top([(r["id"], r["downloads"]) for r in body["repos"]], ranked(filled, "model"), 5)
    for repo in body["repos"]:
        daily = filled.expected[f"model:{repo['id']}"]["daily"]
        days = [(filled.today - timedelta(days=29 - i)).isoformat() for i in range(30)]
        assert repo["daily"] == [daily.get(d, 0) for d in days]
        assert repo["downloadsAllTime"] == filled.expected[f"model:{repo['id']}"]["downloadsAllTime"]


def test_dashboard_organisation_summary(filled: Filled, api: ApiClient) -> None:
    org, keys = next(iter(filled.orgs().items()))
    body = api.get(f"/api/pipeline/organizations/{org}").json()
    assert body["repos"] == len(keys)
    assert body["downloadsAllTime"] == sum(filled.expected[k]["downloadsAllTime"] for k in keys)
    assert body["downloads"] == sum(filled.last30(k) for k in keys)
    assert [r["downloads"] for r in body["top"]] == sorted((r["downloads"] for r in body["top"]), reverse=True)


def test_suggestions_come_from_the_org_index(filled: Filled, api: ApiClient) -> None:
    org, keys = next(iter(filled.orgs().items()))
    ids = api.get("/api/pipeline/suggest", params={"q": f"{org}/", "limit": 20}).json()["ids"]
    assert ids and all(f"{i['repoType']}:{i['id']}" in keys for i in ids)
    assert api.get("/api/pipeline/suggest", params={"q": "*"}).json() == {"ids": []}


def test_health_readiness_and_metrics(api: ApiClient) -> None:
    assert api.get("/healthz").json() == {"ok": True}
    assert api.get("/readyz").json() == {"ready": True}
    api.get("/api/models/nobody/nothing")
    metrics = api.get("/metrics").text
    assert 'hubcounter_api_requests_total{method="GET",route="/api/models/{org}/{name}",status="404"}' in metrics
    assert 'hubcounter_api_request_seconds_bucket{le="0.01",method="GET",route="/readyz"}' in metrics


def test_readiness_fails_when_redis_is_unreachable(api_client_factory: Any) -> None:
    # Nothing listens on that port: /readyz says so, lookups answer 503 with a JSON error.
    down = api_client_factory(create_app(f"redis://127.0.0.1:{free_port()}/0"))
    reply = down.get("/readyz")
    assert reply.status_code == 503 and reply.json()["ready"] is False
    reply = down.get("/api/models/org/name")
    assert reply.status_code == 503 and "error" in reply.json()


def test_openapi_describes_the_api_and_nothing_loads_from_a_cdn(api: ApiClient) -> None:
    spec = api.get("/openapi.json").json()
    for path in ("/api/models/{org}/{name}", "/api/models/{name}", "/api/datasets/{org}/{name}/downloads",
                 "/api/models", "/api/datasets", "/api/organizations/{org}/download-breakdown",
                 "/healthz", "/readyz", "/metrics"):
        assert path in spec["paths"], path
    assert api.get("/docs").status_code == 404  # Swagger UI would load from a CDN
    page = api.get("/")
    assert page.status_code == 200 and "/static/dashboard.js" in page.text



def test_a_huge_organisation_is_read_in_part_and_said_so(filled: Filled, api_client_factory: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # However large an org's index, one request reads at most MAX_ORG_READ of it (here 100),
    # says how much it read, and the answer is cached: the org cannot slow the API down.
    import redis

    from stream.api import orgs
    from stream.store import keys

    monkeypatch.setattr(orgs, "MAX_ORG_READ", 100)
    index = keys.org_repos("huge-org")
    client = redis.Redis.from_url(filled.settings.redis_url)
    client.sadd(index, *[f"model:huge-org/m{i:03d}" for i in range(300)])
    try:
        api = api_client_factory(create_app(filled.settings.redis_url, cache_seconds=60, clock=lambda: filled.now))
        body = api.get("/api/pipeline/organizations/huge-org").json()
        assert (body["repos"], body["reposRead"], body["complete"], len(body["top"])) == (300, 100, False, 100)
        ids = api.get("/api/pipeline/suggest", params={"q": "huge-org/m", "limit": 20}).json()["ids"]
        assert len(ids) == 20 and all(i["id"].startswith("huge-org/m") for i in ids)
        assert len(api.get("/api/models", params={"author": "huge-org", "limit": 1000}).json()) == 100
        client.sadd(index, "model:huge-org/late")
        assert api.get("/api/pipeline/organizations/huge-org").json()["repos"] == 300  # from the cache
    finally:
        client.delete(index)
        client.close()
    small_org, small_keys = next(iter(filled.orgs().items()))
    body = api.get(f"/api/pipeline/organizations/{small_org}").json()
    assert body["complete"] and body["reposRead"] == body["repos"] == len(small_keys)
