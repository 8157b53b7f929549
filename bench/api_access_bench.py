"""What the API's access layer costs: request latency with authentication and rate limiting on versus off.

Part of ``python -m bench.api_bench`` (its Redis, filled the same way). Two API processes
serve that Redis side by side, built alike by ``python -m bench.api_server``:

* **on**: the access layer as deployed: the token check (its per-process cache as by
  default), one rate-limit call to Redis per request (``bucket.lua``), the request limits,
  the time limit and the security headers. Its limits are set so high that the load
  generator never reaches them: every request pays for the check, none is turned away;
* **off**: the same app without the access layer (``create_app(access=None)``).

Two endpoints: a public one (a repo lookup, no token) and a private one (an
organisation's CSV breakdown, sent with an operator token to both servers; the open one
ignores it). Requests go one at a time (closed loop, one in flight): each latency is one
request's own, with no queue in front of it, so the difference between the servers is
what the layer adds to a request. The four (server, endpoint) pairs are measured in turn,
round after round, so drift in the machine's load falls on all of them alike; the
latencies of all rounds are pooled.
"""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path
from typing import Any

from bench.api_bench import (
    BIG_ORG_REPOS,
    UNREACHED_LIMITS,
    _percentile,
    load,
    operator_token,
    repo_id,
    start_server,
)
from stream.devstack import ManagedProcess, free_port


def _servers(redis_url: str, workdir: Path) -> dict[str, ManagedProcess]:
    servers = {}
    for mode in ("on", "off"):
        port = free_port()
        argv = [sys.executable, "-m", "bench.api_server", "--redis-url", redis_url, "--port", str(port),
                *(["--open"] if mode == "off" else [])]
        servers[mode] = start_server(f"api-access-{mode}", argv, port, workdir, UNREACHED_LIMITS)
    return servers


def run(redis_url: str, repos: int, workdir: Path, quick: bool) -> dict[str, Any]:
    """The figures: p50/p99 per server and endpoint, and the p50 and p99 the layer adds."""
    rounds, public_n, private_n = (3, 300, 200) if quick else (6, 2000, 1000)
    headers = {"Authorization": f"Bearer {asyncio.run(operator_token(redis_url))}"}

    def lookup(rng: random.Random) -> str:
        repo_type, name = repo_id(rng.randrange(repos))
        return f"/api/{repo_type}s/{name}?expand[]=downloads&expand[]=downloadsAllTime"

    def breakdown(rng: random.Random) -> str:
        # organisations of a repo or a few (not the 5,000-repo one: a different measurement)
        org = repo_id(rng.randrange(BIG_ORG_REPOS, repos))[1].split("/")[0]
        return f"/api/organizations/{org}/download-breakdown"

    endpoints = {"public repo lookup": (lookup, public_n),
                 "private CSV breakdown of an organisation": (breakdown, private_n)}
    samples: dict[tuple[str, str], list[float]] = {(m, e): [] for m in ("on", "off") for e in endpoints}
    errors: dict[tuple[str, str], Any] = {}
    servers = _servers(redis_url, workdir)
    try:
        for round_no in range(rounds):
            for endpoint, (make_path, count) in endpoints.items():
                for mode in ("on", "off") if round_no % 2 == 0 else ("off", "on"):
                    base = f"http://127.0.0.1:{servers[mode].port}"
                    measured = asyncio.run(load(base, make_path, count, 1, seed=round_no, headers=headers,
                                                samples=samples[(mode, endpoint)]))
                    if measured["errors"]:
                        errors[(mode, endpoint)] = measured["errors"]
    finally:
        for server in servers.values():
            server.stop()
    figures: dict[str, Any] = {"rounds": rounds, "in flight": 1}
    for endpoint in endpoints:
        row: dict[str, Any] = {}
        for mode in ("on", "off"):
            ordered = sorted(samples[(mode, endpoint)])
            row[f"{mode}_p50_ms"] = round(_percentile(ordered, 50) * 1000, 3)
            row[f"{mode}_p99_ms"] = round(_percentile(ordered, 99) * 1000, 3)
            row[f"{mode}_requests"] = len(ordered)
        row["added_p50_ms"] = round(row["on_p50_ms"] - row["off_p50_ms"], 3)
        row["added_p99_ms"] = round(row["on_p99_ms"] - row["off_p99_ms"], 3)
        figures[endpoint] = row
    return figures | {"errors": {f"{m} {e}": n for (m, e), n in errors.items()} or 0}
