"""The analytics endpoints answer what the reference computes over the same log.

A real worker counts simulated traffic (CI runners, bots, mirrors, browsers, library
clients, countries, GGUF quantizations, files a rule misses); every answer is checked
against :mod:`stream.reference.analytics`, before and after the closed days are folded.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import orjson
import pytest

from stream.api import create_app
from stream.fields import DIMENSION_PREFIXES
from stream.reference.analytics import DIMENSIONS, folded
from stream.rules import load_registry
from stream.settings import AccessSettings
from stream.store.connect import RedisConfig, connect
from stream.store.folding import fold_closed_days
from stream.store.keys import UNCOUNTED_TOP
from tests.integration.api.support import ApiClient, Filled, fill
from tests.support import hll_tolerance

pytestmark = pytest.mark.integration

TOP = 3  # small, so that folding is exercised on the simulator's few values per day
DEFAULT_TOP = 50


@pytest.fixture(scope="module")
def filled(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Filled:
    return fill(stack, tmp_path_factory.mktemp("analytics"), "analytics", seed=71, events=40_000, repos=300, days=12)


@dataclass
class Reader:
    """An API process as an operator (who reads every organisation's analytics)."""

    client: ApiClient
    headers: dict[str, str]

    def get(self, path: str, **params: Any) -> Any:
        reply = self.client.get(path, params=params, headers=self.headers)
        assert reply.status_code == 200, (path, reply.text)
        return reply


def reader_of(filled: Filled, api_client_factory: Any) -> Reader:
    # No rate limits in the way of many requests.
    client = api_client_factory(create_app(filled.settings.redis_url, clock=lambda: filled.now,
                                           access=AccessSettings.defaults(rate_limit=False)))
    token, _ = client.call(lambda: client.app.state.tokens.create(["*"], f"analytics-{id(client)}"))
    return Reader(client, {"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def api(filled: Filled, api_client_factory: Any) -> Reader:
    return reader_of(filled, api_client_factory)


def expected_breakdown(filled: Filled, key: str, dimension: str, start: date, end: date,
                       top: int = DEFAULT_TOP) -> tuple[int, dict[str, int]]:
    """The reference's breakdown of a range: each day folded to ``top``, summed, folded again."""
    summed: Counter[str] = Counter()
    for day, figures in filled.analytics.get(key, {}).items():  # type: ignore[union-attr]
        if start.isoformat() <= day <= end.isoformat():
            summed.update(folded(figures[dimension], top))
    total = sum(n for day, n in filled.expected.get(key, {}).get("daily", {}).items()
                if start.isoformat() <= day <= end.isoformat())
    return total, folded(dict(summed), top)


def busiest(filled: Filled, repo_type: str, n: int = 8) -> list[str]:
    keys = sorted(filled.of_type(repo_type), key=lambda r: -filled.expected[f"{repo_type}:{r}"]["downloadsAllTime"])
    return keys[:n]


def answered(api: Reader, path: str, **params: Any) -> Any:
    return api.get(path, **params).json()


def values_of(body: dict) -> dict[str, int]:
    return {"" if v["value"] is None else v["value"]: v["downloads"] for v in body["values"]}


def check_breakdowns(filled: Filled, api: Reader, top: int = DEFAULT_TOP) -> None:
    start, end = filled.today - timedelta(days=29), filled.today
    for repo_type in ("model", "dataset"):
        for repo in busiest(filled, repo_type):
            for dimension in DIMENSIONS:
                body = answered(api, f"/api/{repo_type}s/{repo}/downloads/breakdown", by=dimension,
                                start=start.isoformat(), end=end.isoformat())
                total, values = expected_breakdown(filled, f"{repo_type}:{repo}", dimension, start, end, top)
                assert (body["total"], values_of(body)) == (total, values), (repo, dimension)
                assert sum(values_of(body).values()) == body["total"]


def test_breakdowns_equal_the_reference(filled: Filled, api: Reader) -> None:
    # Every class, client, country and file of the busiest repos, over 30 days.
    check_breakdowns(filled, api)
    classes = {v["value"] for repo in busiest(filled, "model")
               for v in answered(api, f"/api/models/{repo}/downloads/breakdown", by="class")["values"]}
    assert {"ci", "bot", "browser", "other"} <= classes, "the simulator should make every kind of traffic"


def test_uniques_equal_the_reference_within_the_hll_error(filled: Filled, api: Reader) -> None:
    for repo_type in ("model", "dataset"):
        for repo in busiest(filled, repo_type):
            body = answered(api, f"/api/{repo_type}s/{repo}/downloads/uniques")
            figures = filled.analytics[f"{repo_type}:{repo}"]  # type: ignore[index]
            for day in body["daily"]:
                exact = figures.get(day["date"], {}).get("uniques", 0)
                assert abs(day["uniqueDownloaders"] - exact) <= hll_tolerance(exact), (repo, day, exact)
            assert body["uniqueDownloaders"] <= sum(d["uniqueDownloaders"] for d in body["daily"])


def test_uncounted_requests_come_with_the_rule(filled: Filled, api: Reader) -> None:
    registry = load_registry()
    missed = {key: days for key, days in filled.analytics.items()  # type: ignore[union-attr]
              if key.startswith("model:") and any(d["uncounted"] for d in days.values())}
    assert missed, "the simulator should make requests that a rule misses"
    for key in sorted(missed, key=lambda k: -sum(sum(d["uncounted"].values()) for d in missed[k].values()))[:8]:
        repo = key.partition(":")[2]
        paths: Counter[str] = Counter()
        library = None
        for day, figures in missed[key].items():
            if (filled.today - timedelta(days=29)).isoformat() <= day:
                paths.update(figures["uncounted"])
                library = figures["library"] or library
        body = answered(api, f"/api/models/{repo}/downloads/uncounted", days=30)
        want = folded(dict(paths), UNCOUNTED_TOP)
        assert {("" if row["path"] is None else row["path"]): row["requests"] for row in body} == want
        assert [row["requests"] for row in body if row["path"]] == sorted(
            (n for p, n in want.items() if p), reverse=True)
        for row in body:
            if row["path"] is not None:
                assert row["rule"] == registry.explain(library, row["path"]).reason


def test_npm_point_and_range_and_downloads_excluding_ci(filled: Filled, api: Reader) -> None:
    yesterday = filled.today - timedelta(days=1)
    for repo in busiest(filled, "model"):
        daily = filled.expected[f"model:{repo}"]["daily"]
        week = [(yesterday - timedelta(days=i)).isoformat() for i in range(6, -1, -1)]
        point = answered(api, f"/api/downloads/point/last-week/model/{repo}")
        assert point == {"downloads": sum(daily.get(d, 0) for d in week), "start": week[0], "end": week[-1],
                         "id": repo}
        ranged = answered(api, f"/api/downloads/range/{week[0]}:{week[-1]}/model/{repo}")
        assert ranged["downloads"] == [{"day": d, "downloads": daily.get(d, 0)} for d in week]
        info = answered(api, f"/api/models/{repo}")
        _, classes = expected_breakdown(filled, f"model:{repo}", "class", filled.today - timedelta(days=29),
                                        filled.today)
        assert info["downloadsExcludingCI"] == info["downloads"] - classes.get("ci", 0) - classes.get("bot", 0)


def test_the_csv_has_a_row_per_day_and_value(filled: Filled, api: Reader) -> None:
    repo = busiest(filled, "model")[0]
    reply = api.get(f"/api/models/{repo}/downloads/breakdown.csv", by="country")
    rows = list(csv.reader(io.StringIO(reply.text)))
    assert rows[0] == ["repoType", "repoName", "date", "dimension", "value", "downloads"]
    by_day: dict[str, dict[str, int]] = {}
    for _, name, day, dimension, value, n in rows[1:]:
        assert (name, dimension) == (repo, "country")
        by_day.setdefault(day, {})[value] = int(n)
    want = {day: f["country"] for day, f in filled.analytics[f"model:{repo}"].items()  # type: ignore[index]
            if day >= (filled.today - timedelta(days=29)).isoformat() and f["country"]}
    assert by_day == want


def test_folding_closed_days_changes_no_answer_and_bounds_what_is_kept(filled: Filled,
                                                                     api_client_factory: Any) -> None:
    # Readers fold every day with the workers' top values, so folding the days in Redis
    # (as two months later) changes no answer, and each day then keeps at most TOP values.
    async def configure(action: Any) -> Any:
        client = await connect(RedisConfig(filled.settings.redis_url))
        try:
            return await action(client)
        finally:
            await client.aclose()

    asyncio.run(configure(lambda c: c.hset("hc:config", "top_values", TOP)))
    try:
        check_breakdowns(filled, reader_of(filled, api_client_factory), top=TOP)  # folded as read
        folded_days = asyncio.run(configure(lambda c: fold_closed_days(
            c, filled.settings.shards, filled.today + timedelta(days=60),
            timedelta(days=filled.settings.lateness_days), TOP, UNCOUNTED_TOP)))
        assert folded_days, "every counted day is closed two months later"
        check_breakdowns(filled, reader_of(filled, api_client_factory), top=TOP)  # folded in Redis
        kept = asyncio.run(configure(lambda c: _values_per_dimension(c, filled)))
        assert kept and max(kept) <= TOP + 1  # the top values and "other"
    finally:
        asyncio.run(configure(lambda c: c.hset("hc:config", "top_values", DEFAULT_TOP)))


async def _values_per_dimension(client: Any, filled: Filled) -> list[int]:
    """How many fields each dimension of each breakdown hash of the busiest repos holds."""
    from stream.store import keys

    counts = []
    for repo_type in ("model", "dataset"):
        for repo in busiest(filled, repo_type):
            key = f"{repo_type}:{repo}"
            for day in filled.analytics[key]:  # type: ignore[index]
                fields = await client.hkeys(keys.breakdown(keys.shard_of(key, filled.settings.shards), key, day))
                for prefix in DIMENSION_PREFIXES.values():
                    counts.append(sum(1 for f in fields if f.decode().startswith(prefix)))
    return counts


def test_the_cli_says_why_and_exports(filled: Filled, api: Reader) -> None:
    # `hubcounter why`, `counts --by` and `export --by` read the same figures as the API
    # (compared with the API's answers, not the reference: the folding test before this one
    # may have folded the days in Redis to fewer top values than the default).
    from click.testing import CliRunner

    from stream.cli import main

    url = ["--redis-url", filled.settings.redis_url]
    missed = sorted(((sum(sum(d["uncounted"].values()) for d in days.values()), key)
                     for key, days in filled.analytics.items() if key.startswith("model:")), reverse=True)  # type: ignore[union-attr]
    key = missed[0][1]
    said = CliRunner().invoke(main, ["why", key, *url])
    assert said.exit_code == 0, said.output
    top_path = max(((p, n) for d in filled.analytics[key].values() for p, n in d["uncounted"].items()),  # type: ignore[index]
                   key=lambda item: item[1])[0]
    assert (top_path in said.output and "does not match" in said.output) or "no clause matched" in said.output

    repo = busiest(filled, "model")[0]
    counted = CliRunner().invoke(main, ["counts", f"model:{repo}", "--by", "client", *url])
    assert counted.exit_code == 0, counted.output
    start = filled.today - timedelta(days=29)
    body = orjson.loads(counted.output)
    assert body["total"] > 0
    served = answered(api, f"/api/models/{repo}/downloads/breakdown", by="client",
                      start=start.isoformat(), end=filled.today.isoformat())
    assert (body["total"], body["values"]) == (served["total"], served["values"])

    exported = CliRunner().invoke(main, ["export", f"model:{repo}", "--by", "client", *url])
    rows = list(csv.reader(io.StringIO(exported.output)))[1:]
    assert sum(int(n) for *_, n in rows) == body["total"]
