"""The dashboard in a real headless Chromium, served from a live stack.

A worker counts a simulated log and keeps running (so heartbeats exist); uvicorn serves
the app from a thread; Playwright drives Debian's Chromium. A missing Chromium fails
the module with the fix, never skips it. Set ``HUBCOUNTER_DOCS_SCREENSHOTS=docs`` to also
write the README's screenshots (``dashboard.png``: a repo page with its analytics;
``dashboard-overview.png``: the overview with live rates).
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from stream.api import create_app
from stream.devstack import Stack
from stream.reference import library_table
from stream.rules import load_registry
from stream.simulate import Simulation
from tests.integration.api.support import Filled, ServerThread, assert_top, create_token, fill, ranked
from tests.support import Feeder, send

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SEED, REPOS = 31, 400
TOP_ROWS = "#top-table tbody tr[data-id]"
# Chromium logs every answer >= 400 to a fetch as a console error: expected where a test
# checks that the API refuses a private view.
REFUSED_LOAD = re.compile(r"Failed to load resource: the server responded with a status of 40[13]")
# ... and a 404 where a test opens a repo that has nothing counted.
NOT_FOUND_LOAD = re.compile(r"Failed to load resource: the server responded with a status of 404")
LIST_ROWS = 10  # values a top list of the repo page shows before its "other" row


class Live:
    """The filled stack with its worker still running, and the server in front of it."""

    def __init__(self, filled: Filled, server: ServerThread):
        self.filled = filled
        self.server = server
        self.url = server.url


@pytest.fixture(scope="module")
def live(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    # 20 days of history, so the sparklines and the daily chart have a shape.
    filled = fill(stack, tmp_path_factory.mktemp("dashboard"), "dash", seed=SEED, repos=REPOS,
                  events=50_000, days=20, keep_worker=True)
    server = ServerThread(create_app(filled.settings.redis_url)).start()
    try:
        yield Live(filled, server)
    finally:
        server.stop()
        assert filled.worker is not None
        filled.worker.stop()


@pytest.fixture(scope="module")
def browser(live: Live) -> Iterator[Browser]:
    # Depends on ``live``: the stack must be filled (asyncio.run) before Playwright's loop runs here.
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing: {CHROMIUM} does not exist. The dashboard tests drive a real "
                    "headless Chromium; install Debian's package: apt-get install -y chromium", pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def refusals_expected() -> None:
    """Marks a test in which the API refuses some of the page's requests (401/403) on purpose."""


@pytest.fixture
def not_found_expected() -> None:
    """Marks a test whose page asks for a repo the API does not know (404) on purpose."""


@pytest.fixture
def page(browser: Browser, live: Live, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page that may only talk to our server; script errors (content-security-policy
    violations among them) and outside requests fail the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US", accept_downloads=True)
    opened = context.new_page()
    errors: list[str] = []
    outside: list[str] = []
    ours = urlsplit(live.url).netloc
    expected = [pattern for pattern, fixture in ((REFUSED_LOAD, "refusals_expected"),
                                                  (NOT_FOUND_LOAD, "not_found_expected"))
                if fixture in request.fixturenames]

    def on_console(text: str) -> None:
        if not any(pattern.search(text) for pattern in expected):
            errors.append(text)

    def guard(route: Route) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).netloc == ours:
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    opened.route("**/*", guard)
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.on("console", lambda msg: on_console(msg.text) if msg.type == "error" else None)
    yield opened
    context.close()
    assert not outside, f"the page tried to load from outside the machine: {outside}"
    assert not errors, f"script errors: {errors}"


def top_rows(page: Page) -> list[tuple[str, int, str]]:
    """(id, downloads, shown text) of each row of the top list."""
    page.wait_for_selector(TOP_ROWS)
    return page.eval_on_selector_all(TOP_ROWS, """rows => rows.map(r => {
        const cell = r.querySelector('td.downloads');
        return [r.dataset.id, Number(cell.dataset.value), cell.textContent];
    })""")


def test_top_list_shows_the_expected_repos_in_order(live: Live, page: Page, tmp_path: Path) -> None:
    # The 15 most downloaded models of 30 days, as the reference ranks them, with separators.
    page.goto(live.url)
    rows = top_rows(page)
    assert len(rows) == 15
    assert_top([(r, n) for r, n, _ in rows], ranked(live.filled, "model"), 15)
    assert all(text == f"{n:,}" for _, n, text in rows)
    assert page.locator(f"{TOP_ROWS} svg.sparkline").count() == 15
    page.screenshot(path=str(tmp_path / "top.png"), full_page=True)


def test_datasets_tab_lists_the_top_datasets(live: Live, page: Page) -> None:
    page.goto(live.url)
    page.wait_for_selector(TOP_ROWS)
    page.click("button.tab[data-type=dataset]")
    page.wait_for_selector(f"{TOP_ROWS}[data-type=dataset]")
    rows = top_rows(page)
    assert_top([(r, n) for r, n, _ in rows], ranked(live.filled, "dataset"), len(rows))


def test_repo_page_shows_its_daily_chart(live: Live, page: Page, tmp_path: Path) -> None:
    # From the top list to the repo's page: totals and a 30-bar chart with labelled axes.
    page.goto(live.url)
    repo = top_rows(page)[0][0]
    page.click(f"{TOP_ROWS}[data-id='{repo}'] a.repo-link")
    page.wait_for_selector("#repo-chart rect.bar", state="attached")
    assert page.url.endswith(f"#/models/{repo}")
    expected = live.filled.expected[f"model:{repo}"]
    page.wait_for_function("want => document.getElementById('repo-all').textContent === want",
                           arg=f"{expected['downloadsAllTime']:,}")
    assert page.text_content("#repo-30d") == f"{live.filled.last30(f'model:{repo}'):,}"
    bars = page.eval_on_selector_all("#repo-chart rect.bar", "bars => bars.map(b => [b.dataset.day, +b.dataset.value])")
    assert len(bars) == 30
    assert {day: n for day, n in bars if n} == expected["daily"]
    titles = page.eval_on_selector_all("#repo-chart .axis-title", "ts => ts.map(t => t.textContent)")
    assert titles == ["Downloads per day", "Day (UTC)"]
    page.screenshot(path=str(tmp_path / "repo.png"), full_page=True)
    page.click("button.tab[data-days='90']")
    page.wait_for_function("() => document.querySelectorAll('#repo-chart rect.bar').length === 90")


def test_search_box_opens_a_repo(live: Live, page: Page) -> None:
    repo = next(r for r in live.filled.of_type("dataset") if "/" in r)
    page.goto(live.url)
    page.fill("#search-input", f"datasets/{repo}")
    page.press("#search-input", "Enter")
    page.wait_for_selector("#repo-chart rect.bar", state="attached")
    assert page.url.endswith(f"#/datasets/{repo}")
    assert page.text_content("#repo-title") == repo.split("/")[1]


def test_organisation_view_lists_its_repos(live: Live, page: Page) -> None:
    org, keys = next(iter(live.filled.orgs().items()))
    page.goto(f"{live.url}/#/org/{org}")
    page.wait_for_selector("#org-table tbody tr[data-id]")
    shown = page.eval_on_selector_all("#org-table tbody tr[data-id]", "rows => rows.map(r => r.dataset.id)")
    assert sorted(shown) == sorted(k.partition(":")[2] for k in keys)
    total = sum(live.filled.expected[k]["downloadsAllTime"] for k in keys)
    assert page.text_content("#org-all") == f"{total:,}"


# -- private analytics: the organisation's own ------------------------------------------------

@pytest.fixture(scope="module")
def org_tokens(live: Live) -> dict[str, str]:
    """Tokens made with `hubcounter tokens create`: one for the biggest org, one for another."""
    first, second, *_ = live.filled.orgs()
    return {org: create_token(live.filled.settings.redis_url, org, name=f"dash-{org}") for org in (first, second)}


def give_token(page: Page, token: str) -> str:
    """Paste a token into the top bar's token panel, as a user would; what the page then says about it."""
    page.click("#token-button")
    page.fill("#token-input", token)
    page.click("#token-panel button[type=submit]")
    page.wait_for_function("() => !document.getElementById('token-status').textContent.startsWith('Checking')")
    return page.text_content("#token-status") or ""


def org_daily(filled: Filled, org: str, days: int = 30) -> dict[str, int]:
    """The reference's downloads of all of ``org``'s repos per day, over the ``days`` ending today."""
    first = (filled.today - timedelta(days=days - 1)).isoformat()
    totals: dict[str, int] = {}
    for key in filled.orgs()[org]:
        for day, n in filled.expected[key]["daily"].items():
            if first <= day <= filled.today.isoformat():
                totals[day] = totals.get(day, 0) + n
    return totals


def closed_private_view(page: Page, url: str, org: str) -> tuple[str | None, str | None]:
    """Open the org page, whose private part must stay closed: (why, what it says)."""
    page.goto(f"{url}/#/org/{org}")
    page.wait_for_selector("#org-private-lock:not([hidden])")
    assert page.locator("#org-daily-chart rect.bar").count() == 0
    assert page.is_disabled("#org-csv")
    return page.get_attribute("#org-private-lock", "data-reason"), page.text_content("#org-private-lock")


def test_private_analytics_are_refused_without_a_token(live: Live, page: Page, refusals_expected: None) -> None:
    # Without a token the org page says what it would need (and does not ask the API,
    # which refuses the page's own request without one); its public part shows as always.
    org = next(iter(live.filled.orgs()))
    assert closed_private_view(page, live.url, org) == ("no-token", (
        f"Private to {org}: its daily breakdown needs an API token that covers {org}. Give one with Token, top right."))
    page.wait_for_selector("#org-table tbody tr[data-id]")
    refused = page.evaluate("url => fetch(url).then(async r => [r.status, (await r.json()).error])",
                            f"/api/organizations/{org}/download-breakdown")
    assert refused[0] == 401 and refused[1].startswith("this endpoint is private")


def test_private_analytics_with_a_token(live: Live, page: Page, org_tokens: dict[str, str], tmp_path: Path) -> None:
    # With a token that covers the org: its daily totals (from the private CSV breakdown)
    # as a chart, and the whole CSV as a download; the token stays in this tab only.
    org = next(iter(live.filled.orgs()))
    page.goto(live.url)
    status = give_token(page, org_tokens[org])
    assert status.startswith(f'Token "dash-{org}" covers {org}, until ')
    page.goto(f"{live.url}/#/org/{org}")
    page.wait_for_function("() => document.querySelectorAll('#org-daily-chart rect.bar').length === 30")
    bars = page.eval_on_selector_all("#org-daily-chart rect.bar",
                                     "bs => bs.map(b => [b.dataset.day, +b.dataset.value])")
    assert {day: n for day, n in bars if n} == org_daily(live.filled, org)
    assert page.is_hidden("#org-private-lock")
    page.screenshot(path=str(tmp_path / "org.png"), full_page=True)
    with page.expect_download() as download:
        page.click("#org-csv")
    assert download.value.suggested_filename == f"{org}-downloads-all.csv"
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0] == ["repoType", "repoName", "total", "timestamp", "downloads"]
    assert sum(int(r[4]) for r in rows[1:]) == sum(
        sum(live.filled.expected[k]["daily"].values()) for k in live.filled.orgs()[org])
    stored = page.evaluate("() => [sessionStorage.getItem('hubcounter.token'), localStorage.length]")
    assert stored == [org_tokens[org], 0]


def test_a_token_of_another_organisation_is_refused(live: Live, page: Page, org_tokens: dict[str, str],
                                                   refusals_expected: None) -> None:
    # Another org's token opens nothing here: 403, said in words, no chart, no CSV.
    org, other = list(live.filled.orgs())[:2]
    page.goto(live.url)
    give_token(page, org_tokens[other])
    assert closed_private_view(page, live.url, org) == (
        "403", f"Private to {org}: this token does not cover the organisation '{org}'.")


def test_an_unknown_token_is_refused(live: Live, page: Page, refusals_expected: None) -> None:
    page.goto(live.url)
    status = give_token(page, "hct_0123456789abcdef_" + "x" * 43)
    assert status == "Refused: the token is unknown, expired or revoked (expected Authorization: Bearer <token>)"
    assert page.get_attribute("#token-button", "data-state") == "refused"


# -- a repo's private analytics ------------------------------------------------------------

REPO_LOCK = "#repo-private-lock"


def api_get(live: Live, path: str, token: str | None = None) -> Any:
    """An answer of the API the page reads, as the test process reads it (status 200 expected)."""
    request = urllib.request.Request(f"{live.url}{path}", headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=10) as reply:
        body = reply.read()
    return body.decode() if path.split("?")[0].endswith(".csv") else orjson.loads(body)


def busiest_model(live: Live, org: str) -> str:
    """The organisation's model with most downloads (the reference's)."""
    models = [k for k in live.filled.orgs()[org] if k.startswith("model:")]
    return max(models, key=lambda k: (live.filled.expected[k]["downloadsAllTime"], k)).partition(":")[2]


def shown_rows(breakdown: dict[str, Any]) -> list[list[Any]]:
    """What a top list shows of the API's breakdown: its first values, the rest as one "other" row."""
    named = [[v["value"], v["downloads"]] for v in breakdown["values"] if v["value"] is not None]
    rest = breakdown["total"] - sum(n for _, n in named[:LIST_ROWS])
    return named[:LIST_ROWS] + ([["", rest]] if rest > 0 else [])


def closed_repo_view(page: Page, url: str, repo: str) -> tuple[str | None, str | None]:
    """Open a repo page whose private part must stay closed while its counts show: (why, what it says)."""
    page.goto(f"{url}/#/models/{repo}")
    page.wait_for_selector(f"{REPO_LOCK}:not([hidden])")
    page.wait_for_selector("#repo-chart rect.bar", state="attached")  # the public counts stay
    assert page.is_hidden("#repo-private-body")
    assert page.locator("#repo-class-chart rect, #repo-top-client tr, #repo-uncounted tbody tr").count() == 0
    return page.get_attribute(REPO_LOCK, "data-reason"), page.text_content(REPO_LOCK)


def test_repo_analytics_are_refused_without_a_token(live: Live, page: Page, refusals_expected: None) -> None:
    # The counts are public; the classes, clients, countries, files, uniques and what did not
    # count are the organisation's: without a token the page says what it would need.
    org = next(iter(live.filled.orgs()))
    repo = busiest_model(live, org)
    assert closed_repo_view(page, live.url, repo) == ("no-token", (
        f"Private to {org}: this repo's traffic classes, clients, countries, files, unique downloaders and "
        f"uncounted requests need an API token that covers {org}. Give one with Token, top right."))
    refused = page.evaluate("url => fetch(url).then(r => r.status)", f"/api/models/{repo}/downloads/breakdown?by=class")
    assert refused == 401


def test_repo_analytics_are_refused_with_another_organisations_token(
        live: Live, page: Page, org_tokens: dict[str, str], refusals_expected: None) -> None:
    # Another org's token opens nothing (403, in words); nor does any org's token for a
    # legacy repo, which has no organisation: its analytics are for operators.
    org, other = list(live.filled.orgs())[:2]
    page.goto(live.url)
    give_token(page, org_tokens[other])
    assert closed_repo_view(page, live.url, busiest_model(live, org)) == (
        "403", f"Private to {org}: this token does not cover the organisation '{org}'.")
    legacy = next(k.partition(":")[2] for k in live.filled.expected if k.startswith("model:") and "/" not in k)
    assert closed_repo_view(page, live.url, legacy) == (
        "403", "Private: this token does not cover this endpoint (operators only: *).")


def test_repo_analytics_with_a_token_show_what_the_api_answers(live: Live, page: Page, org_tokens: dict[str, str],
                                                              tmp_path: Path) -> None:
    # With the org's token, every private view of the repo page shows the API's numbers:
    # the day's classes stack up to the day's public count, the top lists, the uniques
    # and the uncounted table; the token stays in this tab.
    org = next(iter(live.filled.orgs()))
    repo, token = busiest_model(live, org), org_tokens[org]
    page.goto(live.url)
    give_token(page, token)
    page.goto(f"{live.url}/#/models/{repo}")
    page.wait_for_selector("#repo-private-body:not([hidden]) #repo-class-chart rect.bar")
    page.wait_for_selector("#repo-uniques-chart rect.bar", state="attached")
    assert page.is_hidden(REPO_LOCK)
    today = datetime.now(UTC).date()
    start, end = (today - timedelta(days=29)).isoformat(), today.isoformat()
    span = f"start={start}&end={end}"
    base = f"/api/models/{repo}/downloads"

    stacks = page.eval_on_selector_all("#repo-class-chart rect.bar",
                                       "bs => bs.map(b => [b.dataset.day, b.dataset.layer, +b.dataset.value])")
    classes_csv = list(csv.DictReader(io.StringIO(api_get(live, f"{base}/breakdown.csv?by=class&{span}", token))))
    layer_of = {"": "cls-none", **{c: f"cls-{c}" for c in ("ci", "bot", "mirror", "browser", "other")}}
    assert sorted(stacks) == sorted([r["date"], layer_of[r["value"]], int(r["downloads"])] for r in classes_csv)
    per_day: dict[str, int] = {}
    for day, _, n in stacks:
        per_day[day] = per_day.get(day, 0) + n
    assert per_day == {d: n for d, n in live.filled.expected[f"model:{repo}"]["daily"].items() if d >= start}
    legend = page.eval_on_selector_all("#repo-class-legend .key", "ks => ks.map(k => k.dataset.class)")
    assert set(legend) == {r["value"] for r in classes_csv} and len(legend) > 1

    for dimension in ("client", "country", "file"):
        shown = page.eval_on_selector_all(f"#repo-top-{dimension} tr[data-value]",
                                          "rs => rs.map(r => [r.dataset.value, +r.dataset.downloads])")
        assert shown == shown_rows(api_get(live, f"{base}/breakdown?by={dimension}&{span}", token)), dimension

    uniques = api_get(live, f"{base}/uniques?{span}", token)
    assert page.text_content("#repo-uniques") == f"{uniques['uniqueDownloaders']:,}"
    bars = page.eval_on_selector_all("#repo-uniques-chart rect.bar",
                                     "bs => bs.map(b => [b.dataset.day, +b.dataset.value])")
    assert bars == [[d["date"], d["uniqueDownloaders"]] for d in uniques["daily"]]

    info = api_get(live, f"/api/models/{repo}")
    assert page.text_content("#repo-excluding") == f"{info['downloadsExcludingCI']:,}"

    uncounted = api_get(live, f"{base}/uncounted?days=30", token)
    rows = page.eval_on_selector_all("#repo-uncounted tr[data-path]", """rs => rs.map(r => [
        r.dataset.path, Number(r.querySelector('td.requests').textContent.replace(/,/g, '')),
        r.querySelector('td.rule').textContent])""")
    assert rows == [[u["path"] or "", u["requests"], u["rule"]] for u in uncounted]
    assert page.text_content("#repo-uncounted-total") == f"{sum(u['requests'] for u in uncounted):,}"
    assert page.evaluate("() => [sessionStorage.getItem('hubcounter.token'), localStorage.length]") == [token, 0]
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    keep_for_docs(shot)


def test_a_repo_with_nothing_counted_shows_what_did_not_count(live: Live, page: Page,
                                                              not_found_expected: None) -> None:
    # "Why are my downloads 0?": a model whose files its library's rule misses has no
    # counts (the API says 404) but its uncounted requests, with the rule, are there.
    analytics = live.filled.analytics or {}
    repo = next(k.partition(":")[2] for k, days in sorted(analytics.items())
                if k.startswith("model:") and "/" in k and k not in live.filled.expected
                and any(d["uncounted"] for d in days.values()))
    token = create_token(live.filled.settings.redis_url, "*", name="dash-operator")
    page.goto(live.url)
    give_token(page, token)
    page.goto(f"{live.url}/#/models/{repo}")
    page.wait_for_selector("#repo-uncounted tr[data-path]")
    assert page.text_content("#notice") == "Repository not found: nothing has been counted under this id."
    assert page.locator("#repo-public").count() == 0 and page.is_hidden("#repo-private-counted")
    assert page.text_content("#repo-private-note").startswith("No download of this repo has been counted.")
    rows = page.eval_on_selector_all("#repo-uncounted tr[data-path]", "rs => rs.map(r => r.dataset.path)")
    assert rows == [u["path"] or "" for u in api_get(live, f"/api/models/{repo}/downloads/uncounted?days=30", token)]


def test_the_page_is_served_with_a_content_security_policy(live: Live, page: Page) -> None:
    # Scripts and styles from /static only, nothing inline: the page's own scripts run under
    # it (any violation is a console error, which fails every test of this module).
    reply = page.goto(live.url)
    assert reply is not None
    policy = reply.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe-inline" not in policy
    page.wait_for_selector(TOP_ROWS)
    assert page.eval_on_selector_all("script", "ss => ss.filter(s => !s.src || s.textContent.trim()).length") == 0


def test_worker_heartbeats_are_served(live: Live) -> None:
    # The running worker's cumulative totals, fresh (heartbeats every 2 s).
    with urllib.request.urlopen(f"{live.url}/api/pipeline/workers", timeout=10) as reply:
        body = orjson.loads(reply.read())
    [worker] = body["workers"]
    assert worker["group"] == live.filled.settings.group
    assert worker["eventsRead"] >= 50_000 and 0 < worker["eventsCounted"] <= worker["eventsRead"]
    assert body["nowMs"] - worker["updatedMs"] < 10_000


def counting_path(live: Live, repo: str) -> str:
    """A file of the repo whose download counts under its library's rule."""
    catalogue_repo = next(r for r in live.filled.sim.catalogue.repos["model"] if r.name == repo)
    library = library_table(list(live.filled.sim.metadata())).get(f"model:{repo}")
    registry = load_registry()
    return next(p for p in catalogue_repo.layout.files if registry.counts(library, p))


def test_numbers_update_when_new_events_arrive(live: Live, page: Page) -> None:
    # New downloads of the top repo reach the open page without a reload.
    page.goto(live.url)
    repo, before, _ = top_rows(page)[0]
    path = counting_path(live, repo)
    now = datetime.now(UTC).isoformat()
    events = [(f"model:{repo}".encode(), orjson.dumps({
        "timestamp": now, "method": "GET", "status": 200, "repoType": "model", "repoName": repo,
        "path": path, "hashedUserId": f"fresh-user-{i}", "requestId": f"new-{i}"})) for i in range(25)]
    # Playwright's sync API runs an event loop in this thread: produce from another one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(send, live.filled.settings, live.filled.settings.events_topic, events).result()
    page.wait_for_function("""([id, want]) => {
        const cell = document.querySelector(`#top-table tr[data-id="${id}"] td.downloads`);
        return cell && Number(cell.dataset.value) >= want;
    }""", arg=[repo, before + 25], timeout=45_000)
    after = page.eval_on_selector(f"{TOP_ROWS}[data-id='{repo}'] td.downloads", "c => c.textContent")
    assert after == f"{before + 25:,}"


def test_live_rates_show_while_events_flow(live: Live, page: Page, tmp_path: Path) -> None:
    # A steady feed: events/s read and counted become non-zero and the throughput chart draws.
    feed = Simulation(seed=SEED, repos=REPOS, now=datetime.now(UTC), live_rate=400)
    feeder = Feeder(live.filled.settings, [(r.key, r.value) for r in feed.records(9_000)], rate=400).start()
    page.goto(live.url)
    page.wait_for_function("() => Number(document.getElementById('stat-read').textContent.replace(/,/g, '')) > 100",
                           timeout=30_000)
    assert page.locator("#workers-table tr[data-worker]").count() == 1
    page.wait_for_timeout(16_000)  # some history for the chart
    counted = float(page.text_content("#stat-counted").replace(",", ""))
    assert counted > 0
    assert page.locator("#throughput-chart path.series.read").count() == 1
    shot = tmp_path / "dashboard-overview.png"
    page.screenshot(path=str(shot), full_page=True)
    keep_for_docs(shot)
    feeder.join()


def keep_for_docs(shot: Path) -> None:
    """Copy a screenshot into HUBCOUNTER_DOCS_SCREENSHOTS (the README's), when that is set."""
    docs = os.environ.get("HUBCOUNTER_DOCS_SCREENSHOTS")
    if docs:
        shutil.copyfile(shot, Path(docs) / shot.name)
