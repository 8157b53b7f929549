"""The dashboard in a real headless Chromium, served from a live stack.

A worker counts a simulated log and keeps running (so heartbeats exist); uvicorn serves
the app from a thread; Playwright drives Debian's Chromium. A missing Chromium fails
the module with the fix, never skips it. Set ``HUBCOUNTER_DOCS_SCREENSHOT=docs/dashboard.png``
to also write the README's screenshot.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from stream.api import create_app
from stream.devstack import Stack
from stream.reference import library_table
from stream.rules import load_registry
from stream.simulate import Simulation
from tests.integration.api.support import Filled, ServerThread, assert_top, fill, ranked
from tests.support import Feeder, send

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SEED, REPOS = 31, 400
TOP_ROWS = "#top-table tbody tr[data-id]"


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
def page(browser: Browser, live: Live) -> Iterator[Page]:
    """A page that may only talk to our server; script errors and outside requests fail the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
    opened = context.new_page()
    errors: list[str] = []
    outside: list[str] = []
    ours = urlsplit(live.url).netloc

    def guard(route: Route) -> None:
        url = route.request.url
        if url.startswith("data:") or urlsplit(url).netloc == ours:
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    opened.route("**/*", guard)
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
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
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    docs = os.environ.get("HUBCOUNTER_DOCS_SCREENSHOT")
    if docs:
        shutil.copyfile(shot, docs)
    feeder.join()
