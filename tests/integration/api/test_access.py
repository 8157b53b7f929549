"""Who may read what, against a real Redis.

- Every endpoint of the OpenAPI document, walked: each private one refuses no token, a
  token of another organisation, an expired and a revoked token, and serves the right
  one; each public one serves anyone.
- Tokens made, listed and revoked by the real ``hubcounter tokens`` command; Redis keeps
  only their SHA-256.
- Two API processes on one Redis: the rate limit holds across both, and a revoked token
  stops working on both within the cache time.
- The Redis ACL that docs/API.md gives the API's user is enough, and a user that cannot
  write the limiter's keys gets a clear 503.

Counters are written through the real write path (``CounterStore.apply``): these tests
need a few repos of two organisations, not a worker.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
import redis.asyncio as aioredis

from stream.api import access, create_app
from stream.counting import Tally
from stream.devstack import ManagedProcess, Stack, free_port, redis_process
from stream.settings import AccessSettings
from stream.store.writer import CounterStore, PartitionRange
from tests.integration.api.support import ApiClient, ServerThread, create_token, tokens_command

pytestmark = pytest.mark.integration

COUNTED = {"model:acme/llm": 40, "dataset:acme/corpus": 7, "model:rival/x": 5, "model:gpt2": 3, "dataset:squad": 2}
# What fills a path template of the OpenAPI document: acme's repos, and legacy ones.
PATH_VALUES = {"models": {"org": "acme", "name": "llm", "legacy": "gpt2"},
               "datasets": {"org": "acme", "name": "corpus", "legacy": "squad"}}


async def _count(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    try:
        store = CounterStore(client, 16, timedelta(days=7))
        await store.ensure_config()
        now = datetime.now(UTC)
        await store.roll_windows(now)
        tally = Tally()
        for key, n in COUNTED.items():
            tally.plain[(key, now.date().isoformat())] = n
        await store.apply(tally, [PartitionRange("access-test:0", 0, 1, 0)])  # positions [0, 1)
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def redis_url(stack: Stack) -> str:
    redis.Redis.from_url(stack.redis_url).flushall()
    asyncio.run(_count(stack.redis_url))
    return stack.redis_url


@pytest.fixture(scope="module")
def api(redis_url: str, api_client_factory: Any) -> ApiClient:
    # No per-process token cache, so a revocation shows at once (the two-process test below
    # checks the cached case); no rate limits (tested below on their own addresses).
    return api_client_factory(create_app(redis_url, access=AccessSettings.defaults(
        token_cache_seconds=0, rate_limit=False)))


def make(api: ApiClient, orgs: list[str], name: str, **options: Any) -> dict[str, str]:
    token, _ = api.call(lambda: api.app.state.tokens.create(orgs, name, **options))
    return {"Authorization": f"Bearer {token}"}


def concrete(path: str, org: str = "acme") -> str:
    """A path template of the document filled with counted ids."""
    segment = path.split("/")[2] if path.startswith("/api/") else ""
    values = PATH_VALUES.get(segment, {"name": "llm"})
    name = values["name"] if "{org}" in path else values.get("legacy", "x")
    if "{type}" in path:  # npm-style: /api/downloads/{point|range}/{period}/{type}/[{org}/]{name}
        name = "llm" if "{org}" in path else "gpt2"
    query = "?by=client" if path.endswith(("/breakdown", "/breakdown.csv")) else ""  # a required parameter
    return (path.replace("{org}", org).replace("{name}", name).replace("{period}", "last-month")
            .replace("{type}", "model")) + query


def test_each_private_endpoint_refuses_every_wrong_token_and_serves_the_right_one(api: ApiClient) -> None:
    spec = api.get("/openapi.json").json()
    private = sorted(p for p, item in spec["paths"].items() if item["get"]["x-access"] == "private")
    assert private == sorted(p for p, rule in access.ROUTES.items() if rule.private) and private
    right = make(api, ["acme"], "walk-right")
    operator = make(api, ["*"], "walk-operator")
    other = make(api, ["rival"], "walk-other")
    expired = make(api, ["acme"], "walk-expired", expires_in=timedelta(days=1),
                   now=datetime.now(UTC) - timedelta(days=2))
    revoked = make(api, ["acme"], "walk-revoked")
    for path in private:
        url = concrete(path)
        if access.ROUTES[path].org_param is not None:
            assert api.get(url, headers=revoked).status_code == 200, url  # works until revoked
    assert api.call(lambda: api.app.state.tokens.revoke("walk-revoked"))
    for path in private:
        url = concrete(path)
        owned = access.ROUTES[path].org_param is not None  # else operators only: no organisation owns it
        refusals = {"none": api.get(url), "other org": api.get(url, headers=other),
                    "expired": api.get(url, headers=expired), "revoked": api.get(url, headers=revoked)}
        if not owned:
            refusals["an org's"] = api.get(url, headers=right)
        assert {why: r.status_code for why, r in refusals.items()} == {
            "none": 401, "other org": 403, "expired": 401, "revoked": 401, **({} if owned else {"an org's": 403})}, url
        assert all(list(r.json()) == ["error"] for r in refusals.values())
        for headers in (right, operator) if owned else (operator,):
            served = api.get(url, headers=headers)
            assert served.status_code == 200, (url, served.text)
            assert served.headers["cache-control"] == "private, no-store"
            if path.endswith("/uncounted"):  # a list of paths, no id: this fixture counted every request
                assert served.json() == []
            else:
                assert ("acme/" if owned else "") in served.text


def test_a_refusal_never_says_whether_the_organisation_exists(api: ApiClient) -> None:
    # The same status and body for a counted org and one that never was (but the name).
    other = make(api, ["rival"], "exists-other")
    for path, rule in access.ROUTES.items():
        if rule.private:
            real, unreal = concrete(path, "acme"), concrete(path, "never-counted")
            assert api.get(real).text == api.get(unreal).text
            forbidden = [api.get(u, headers=other) for u in (real, unreal)]
            assert {r.status_code for r in forbidden} == {403}
            assert forbidden[0].text.replace("acme", "?") == forbidden[1].text.replace("never-counted", "?")


def test_each_public_endpoint_serves_anyone(api: ApiClient) -> None:
    spec = api.get("/openapi.json").json()
    public = [p for p, item in spec["paths"].items() if item["get"]["x-access"] == "public"]
    assert "/api/models/{org}/{name}" in public and "/api/pipeline/workers" in public
    some_token = make(api, ["rival"], "public-walk")
    for path in public:
        url = concrete(path)
        for headers in ({}, some_token):  # a valid token of any org is no obstacle
            reply = api.get(url, headers=headers)
            assert reply.status_code == 200, (url, reply.text)
            assert "private" not in reply.headers.get("cache-control", "")


def test_whoami_describes_the_token(api: ApiClient) -> None:
    assert api.get("/api/whoami").json() == {"authenticated": False, "privateEndpoints": True}
    body = api.get("/api/whoami", headers=make(api, ["acme", "rival"], "who", expires_in=None)).json()
    assert body == {"authenticated": True, "privateEndpoints": True, "name": "who", "orgs": ["acme", "rival"],
                    "expires": None}


# -- the command ------------------------------------------------------------------------------

def test_tokens_command_creates_lists_and_revokes(redis_url: str, api: ApiClient) -> None:
    token = create_token(redis_url, "acme", "rival", name="cli-token", expires="30d")
    assert api.get("/api/organizations/rival/download-breakdown",
                   headers={"Authorization": f"Bearer {token}"}).status_code == 200
    listed = orjson.loads(tokens_command(redis_url, "list", "--json").stdout)
    [mine] = [t for t in listed if t["name"] == "cli-token"]
    assert mine["orgs"] == ["acme", "rival"] and mine["status"] == "active"
    expires = datetime.fromisoformat(mine["expires"]) - datetime.fromisoformat(mine["created"])
    assert expires == timedelta(days=30)
    table = tokens_command(redis_url, "list").stdout
    assert "cli-token" in table and token not in table
    again = tokens_command(redis_url, "create", "--org", "acme", "--name", "cli-token")
    assert again.exit_code == 2 and "exists already" in again.stderr
    assert tokens_command(redis_url, "revoke", "cli-token").exit_code == 0
    assert api.get("/api/organizations/rival/download-breakdown",
                   headers={"Authorization": f"Bearer {token}"}).status_code == 401
    gone = tokens_command(redis_url, "revoke", "cli-token")
    assert gone.exit_code == 1 and "no token named 'cli-token'" in gone.stderr


def test_redis_keeps_only_the_sha256_of_a_token(redis_url: str) -> None:
    token = create_token(redis_url, "acme", name="hash-only")
    client = redis.Redis.from_url(redis_url)
    everything = b"".join(k + b"".join(f + v for f, v in client.hgetall(k).items())
                          for k in client.scan_iter() if client.type(k) == b"hash")
    assert token.encode() not in everything and token.rpartition("_")[2].encode() not in everything
    assert hashlib.sha256(token.encode()).hexdigest().encode() in everything


def test_tokens_command_refuses_bad_input(redis_url: str) -> None:
    for args, message in ((["--org", "a--b"], "invalid organization"), (["--org", "acme", "--expires", "1y"],
                          "invalid expiry"), (["--org", "acme", "--name", "a b"], "invalid token name"), ([], "--org")):
        done = tokens_command(redis_url, "create", *args)
        assert done.exit_code == 2 and message in done.stderr, (args, done.stderr)


# -- two API processes, one Redis -------------------------------------------------------------

LIMITS = {"HUBCOUNTER_API_ADDRESS_RATE": "0.5", "HUBCOUNTER_API_ADDRESS_BURST": "10",
          "HUBCOUNTER_API_TOKEN_RATE": "0.5", "HUBCOUNTER_API_TOKEN_BURST": "30",
          "HUBCOUNTER_API_TOKEN_CACHE_SECONDS": "1"}


@pytest.fixture(scope="module")
def two_apis(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Two `python -m stream.api` processes on one Redis, with small limits."""
    workdir = tmp_path_factory.mktemp("two-apis")
    processes = []
    for n in range(2):
        port = free_port()
        argv = ["env", *(f"{k}={v}" for k, v in LIMITS.items()), sys.executable, "-m", "stream.api",
                "--port", str(port), "--redis-url", redis_url, "--log-level", "warning"]
        processes.append(ManagedProcess(f"api{n}", argv, port, workdir / f"api{n}.log"))
    try:
        for process in processes:
            process.start()
        yield [f"http://127.0.0.1:{p.port}" for p in processes]
    finally:
        for process in processes:
            process.stop()


def burst(bases: list[str], count: int, address: str, headers: dict[str, str] | None = None) -> tuple[list[int], float]:
    """``count`` requests, alternating between the processes, from ``address`` (as a proxy says:
    uvicorn trusts X-Forwarded-For from 127.0.0.1); their statuses and how long they took."""
    statuses = []
    began = time.monotonic()
    with httpx.Client(timeout=10) as client:
        for n in range(count):
            reply = client.get(f"{bases[n % 2]}/api/models?limit=1", headers={"X-Forwarded-For": address,
                                                                               **(headers or {})})
            if reply.status_code == 429:
                assert int(reply.headers["retry-after"]) >= 1
                assert reply.json()["error"].startswith("too many requests")
            statuses.append(reply.status_code)
    return statuses, time.monotonic() - began


def test_two_processes_share_one_limit_per_address(two_apis: list[str]) -> None:
    # 10 at once and 0.5/s for an address, over both processes together: separate limits
    # per process would let 20 through.
    statuses, took = burst(two_apis, 40, "198.51.100.7")
    assert set(statuses) == {200, 429}
    assert 10 <= statuses.count(200) <= 10 + 0.5 * took + 1
    assert 429 in statuses[0::2] and 429 in statuses[1::2]  # both processes refuse
    fresh, _ = burst(two_apis, 4, "198.51.100.8")  # another address has its own bucket
    assert fresh == [200] * 4


def test_a_token_has_its_own_limit(two_apis: list[str], redis_url: str) -> None:
    # An exhausted address does not stop a valid token, whose own limit (30 at once) holds across both processes.
    burst(two_apis, 12, "198.51.100.9")
    headers = {"Authorization": f"Bearer {create_token(redis_url, 'acme', name='limited')}"}
    statuses, took = burst(two_apis, 40, "198.51.100.9", headers)
    assert 30 <= statuses.count(200) <= 30 + 0.5 * took + 1 and statuses[0] == 200


def test_a_revoked_token_stops_working_on_every_process_within_seconds(two_apis: list[str], redis_url: str) -> None:
    token = create_token(redis_url, "acme", name="revoked-everywhere")
    url = "/api/organizations/acme/download-breakdown"
    # From an address of its own: refusals count against the address.
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": "198.51.100.10"}
    with httpx.Client(timeout=10, headers=headers) as client:
        assert [client.get(base + url).status_code for base in two_apis] == [200, 200]  # now cached by both
        assert tokens_command(redis_url, "revoke", "revoked-everywhere").exit_code == 0
        revoked_at = time.monotonic()
        refused_after = {}
        while len(refused_after) < 2 and time.monotonic() - revoked_at < 10:
            for base in two_apis:
                if base not in refused_after and client.get(base + url).status_code == 401:
                    refused_after[base] = time.monotonic() - revoked_at
            time.sleep(0.2)
    # each process trusts what it read for 1 s (HUBCOUNTER_API_TOKEN_CACHE_SECONDS)
    assert len(refused_after) == 2 and max(refused_after.values()) < 1 + 1.0, refused_after


def test_tokens_and_buckets_can_live_in_a_redis_of_their_own(redis_url: str, tmp_path: Path) -> None:
    # HUBCOUNTER_API_ACCESS_REDIS_URL: counters read from one Redis (a replica, say), the
    # tokens read and the buckets written in another.
    other = redis_process(tmp_path, durable=False)
    other.start()
    try:
        access_url = f"redis://127.0.0.1:{other.port}/0"
        app = create_app(redis_url, access=AccessSettings.defaults(access_redis_url=access_url))
        server = ServerThread(app).start()
        try:
            path = f"{server.url}/api/organizations/acme/download-breakdown"
            here = {"Authorization": f"Bearer {create_token(access_url, 'acme', name='elsewhere')}"}
            there = {"Authorization": f"Bearer {create_token(redis_url, 'acme', name='counters-redis')}"}
            assert httpx.get(path, headers=here).status_code == 200
            assert httpx.get(path, headers=there).status_code == 401
        finally:
            server.stop()
        kept = {k.decode() for k in redis.Redis.from_url(access_url).scan_iter()}
        assert {"hc:{tokens}:byid", "hc:{tokens}:names", "hc:rl:{a:127.0.0.1}"} <= kept
    finally:
        other.stop()


# -- the Redis ACL of docs/API.md -------------------------------------------------------------

COMMANDS = "-@all +@read +@connection +evalsha +script|load +hset +pexpire +time +info"
API_ACL = f"resetkeys %R~hc:* ~hc:rl:* resetchannels {COMMANDS}"
READ_ONLY_ACL = f"resetkeys %R~hc:* resetchannels {COMMANDS}"


@pytest.fixture
def acl_users(redis_url: str) -> Iterator[dict[str, str]]:
    """Two users: with the API's ACL from docs/API.md, and one that may write nothing."""
    admin = redis.Redis.from_url(redis_url)
    host = redis_url.removeprefix("redis://")
    users = {"docs": API_ACL, "read-only": READ_ONLY_ACL}
    for user, rules in users.items():
        admin.execute_command("ACL", "SETUSER", f"hc-test-{user}", "reset", "on", ">pw", *rules.split())
    try:
        yield {user: f"redis://hc-test-{user}:pw@{host}" for user in users}
    finally:
        for user in users:
            admin.execute_command("ACL", "DELUSER", f"hc-test-{user}")


def test_the_documented_acl_is_enough_and_a_read_only_one_is_a_clear_503(
        acl_users: dict[str, str], api_client_factory: Any, redis_url: str) -> None:
    docs = Path(__file__).parents[3] / "docs" / "API.md"
    assert API_ACL in docs.read_text()  # the test checks what the operator is told
    token = {"Authorization": f"Bearer {create_token(redis_url, 'acme', name='acl')}"}
    limited = AccessSettings.defaults(address_rate=0.5, address_burst=3)
    app = api_client_factory(create_app(acl_users["docs"], access=limited))
    assert app.get("/api/models/acme/llm").json()["downloadsAllTime"] == 40
    assert app.get("/api/organizations/acme/download-breakdown", headers=token).status_code == 200
    assert [app.get("/api/models/gpt2").status_code for _ in range(4)][-1] == 429  # the limiter writes
    unwritable = api_client_factory(create_app(acl_users["read-only"], access=limited))
    reply = unwritable.get("/api/models/acme/llm")
    assert reply.status_code == 503 and "Redis permissions" in reply.json()["error"]
