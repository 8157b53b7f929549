"""The read API on a Redis Cluster: every read equals the reference, as on one Redis, with a
read-only ACL user, from the replicas, and on a day whose leaderboards have not been rolled.

One simulated log is counted into the cluster by the real worker for the module; the API
then reads it through a user that may not write, spreading reads over the replicas.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from redis.exceptions import NoPermissionError

from stream.api import create_app
from stream.devstack import Stack
from stream.devstack.redis_cluster import LocalCluster
from stream.settings import AccessSettings
from stream.store import keys
from stream.store.connect import RedisConfig, connect
from tests.integration.api.support import ApiClient, Filled, assert_top, create_token, fill

pytestmark = pytest.mark.integration

# The API's user of docs/API.md ("Redis permissions": the counters read only, its
# rate-limit buckets written), plus what a cluster client asks: the slot map and COMMAND.
# (No INFO: the API tells a cluster from a single Redis by READONLY, which @connection allows.)
API_ACL = ("on", ">api-secret", "resetkeys", "%R~hc:*", "~hc:rl:*", "resetchannels", "-@all", "+@read",
           "+@connection", "+evalsha", "+script|load", "+hset", "+pexpire", "+time", "+cluster|slots",
           "+cluster|shards", "+cluster|nodes", "+command")
# The rate limiter on (its buckets are the API's only writes), its limits out of the tests' reach.
UNLIMITED = AccessSettings.defaults(address_rate=1e6, address_burst=10**6)


@pytest.fixture(scope="module")
def filled(stack: Stack, redis_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Filled:
    redis_cluster.wait_healthy()
    redis_cluster.flush()
    # fill() flushes its URL's node with a plain client: name a master (after the failover
    # tests the first node may be a replica, which refuses FLUSHALL).
    master_url = redis_cluster.url_of(redis_cluster.masters()[0].port)
    counted = fill(dataclasses.replace(stack, redis_url=master_url), tmp_path_factory.mktemp("cluster-api"),
                   "cluster-api", seed=41, events=25_000)
    redis_cluster.acl_user("api", *API_ACL)
    redis_cluster.wait_replicated()  # the reads below go to the replicas
    return counted


@pytest.fixture(scope="module")
def reader_api(filled: Filled, redis_cluster: LocalCluster) -> Iterator[Callable[[int], ApiClient]]:
    """Makes in-process API clients as the read-only user, reading the replicas, with a
    clock some days off the log's; closes them when the module is done."""
    made: list[ApiClient] = []
    url = redis_cluster.url_of(redis_cluster.nodes[0].port, "api:api-secret@")

    def make(days_ahead: int = 0) -> ApiClient:
        clock = lambda: filled.now + timedelta(days=days_ahead)  # noqa: E731
        made.append(ApiClient(create_app(url, read_from_replicas=True, clock=clock, access=UNLIMITED)))
        return made[-1]

    yield make
    for client in made:
        client.close()


def last30(filled: Filled, key: str, days_ahead: int = 0) -> int:
    end = filled.today + timedelta(days=days_ahead)
    first = (end - timedelta(days=29)).isoformat()
    return sum(n for day, n in filled.expected[key]["daily"].items() if first <= day <= end.isoformat())


def last30_excluding_ci(filled: Filled, key: str) -> int:
    """The last 30 days' downloads less those of the ci and bot classes (the reference's)."""
    first = (filled.today - timedelta(days=29)).isoformat()
    days = (filled.analytics or {}).get(key, {})
    machines = sum(figures["class"].get(c, 0) for day, figures in days.items() if day >= first for c in ("ci", "bot"))
    return last30(filled, key) - machines


def ranked(filled: Filled, repo_type: str, days_ahead: int = 0) -> list[tuple[str, int]]:
    """The reference's 30-day ranking: repos without downloads in the window are not listed
    (a rolled board drops them too), which matters when the window keeps few of the log's days."""
    values = [(key.partition(":")[2], last30(filled, key, days_ahead))
              for key in filled.expected if key.startswith(f"{repo_type}:")]
    return sorted((rv for rv in values if rv[1] > 0), key=lambda rv: (-rv[1], rv[0]))


def test_every_read_equals_the_reference(filled: Filled, reader_api: Callable[[int], ApiClient],
                                         redis_cluster: LocalCluster) -> None:
    # Repo pages, top lists, an author's list, the CSV breakdown (private: a token made by
    # `hubcounter tokens` on the cluster) and the dashboard, as the single-Redis API tests
    # check them, here through the cluster's replicas.
    api = reader_api(0)
    assert api.get("/readyz").json() == {"ready": True}
    for key, data in list(filled.expected.items())[:150]:
        repo_type, _, repo = key.partition(":")
        body = api.get(f"/api/{repo_type}s/{repo}").json()
        assert body == {"id": repo, "downloads": last30(filled, key), "downloadsAllTime": data["downloadsAllTime"],
                        "downloadsExcludingCI": last30_excluding_ci(filled, key)}
    for repo_type in keys.COUNTED_TYPES:
        body = api.get(f"/api/{repo_type}s", params={"sort": "downloads", "limit": 25}).json()
        assert_top([(i["id"], i["downloads"]) for i in body], ranked(filled, repo_type), 25)
    org, org_keys = next(iter(filled.orgs().items()))
    body = api.get("/api/models", params={"author": org, "limit": 1000}).json()
    assert [(i["id"], i["downloads"]) for i in body] == [
        (r, n) for r, n in ranked(filled, "model") if f"model:{r}" in org_keys]
    token = create_token(redis_cluster.url, org, name="cluster-reads")
    reply = api.get(f"/api/organizations/{org}/download-breakdown", headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 200, reply.text
    rows = list(csv.reader(io.StringIO(reply.text)))[1:]
    assert rows == [[k.partition(":")[0], k.partition(":")[2], str(filled.expected[k]["downloadsAllTime"]),
                     f"{day}T00:00:00.000Z", str(n)]
                    for k in sorted(org_keys) for day, n in sorted(filled.expected[k]["daily"].items()) if n]
    top = api.get("/api/pipeline/top", params={"repoType": "model", "limit": 5}).json()["repos"]
    assert_top([(r["id"], r["downloads"]) for r in top], ranked(filled, "model"), 5)


@pytest.mark.parametrize("days_ahead", [-1, 28])
def test_reads_before_the_daily_roll_are_right(filled: Filled, reader_api: Callable[[int], ApiClient],
                                                days_ahead: int) -> None:
    # The worker rolled the 30-day boards to the log's day; an API whose clock is a day
    # behind, or 28 days ahead (days of the log have left its window), corrects them
    # while reading, without writing: this user could not roll them anyway.
    api = reader_api(days_ahead)
    state = api.app.state.api
    today = filled.today + timedelta(days=days_ahead)
    every = list(filled.expected)

    async def corrected_totals() -> list:  # every repo's 30 days, corrected
        return await (await state.reader()).totals_many(every, today)

    corrected = api.call(corrected_totals)
    wrong = {k: (c.downloads, last30(filled, k, days_ahead)) for k, c in zip(every, corrected, strict=True)
             if c.downloads != last30(filled, k, days_ahead)}
    assert not wrong, f"{len(wrong)} repos read wrong (read, expected), e.g. {list(wrong.items())[:5]}"
    for repo_type in keys.COUNTED_TYPES:
        body = api.get(f"/api/{repo_type}s", params={"sort": "downloads", "limit": 30}).json()
        assert_top([(i["id"], i["downloads"]) for i in body], ranked(filled, repo_type, days_ahead), 30)
    org, org_keys = next(iter(filled.orgs().items()))
    body = api.get(f"/api/pipeline/organizations/{org}").json()
    assert body["downloads"] == sum(last30(filled, k, days_ahead) for k in org_keys)


def test_the_api_user_cannot_write(filled: Filled, redis_cluster: LocalCluster) -> None:
    # The ACL the reads above ran under refuses writes: the API needs none.
    async def write() -> None:
        client = await connect(RedisConfig(redis_cluster.url_of(redis_cluster.nodes[0].port, "api:api-secret@")))
        try:
            await client.hset(keys.CONFIG_KEY, "shards", 1)
        finally:
            await client.aclose()

    with pytest.raises(NoPermissionError):
        asyncio.run(write())
