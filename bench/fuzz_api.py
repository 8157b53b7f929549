"""Fuzzing the read API: generated requests from its own OpenAPI document, no 5xx allowed.

Run ``python -m bench fuzz-api`` (``--requests N``, default 5,000; ``--quick`` for 600);
``python -m bench all --only fuzz`` runs it too and puts the figures on the page.
It starts a throw-away Redis, fills it with counted repos through the real write path
(``bench.api_bench.fill``: 20,000 repos in 64 shards, one organisation of 5,000), serves
the API as ``python -m stream.api`` does, reads ``/openapi.json`` and sends, with
hypothesis choosing, requests to every GET operation it describes: path parameters that
are real names, near misses and any text at all (slashes, dots, percent signs, control
characters, non-ASCII, thousands of characters); query parameters valid by the schema,
out of range, of the wrong type, repeated, or unknown; plus paths the document does not
describe. Every answer must be below 500; the command prints how many requests it sent
and every 5xx it met (with the request), and exits 1 if there was one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bench.api_bench import BIG_ORG, fill, operator_token, repo_id, serve
from stream.devstack import redis_process

REPOS = 20_000
DEFAULT_REQUESTS = 5_000
REAL_NAMES = [repo_id(i)[1] for i in (0, 1, 7, 4999, 5000, 12_345, REPOS - 1)]
TEXT = st.text(max_size=30) | st.text(st.characters(codec="ascii"), max_size=12) | st.sampled_from([
    "", ".", "..", "-", "a--b", "a..b", "%", "%2F", "%00", "a/b", "a b", "\u00e9", "\x00", "\n", "*", "?", "#",
    "[]", "{}", "null", "0", "-1", "1e999", "x" * 97, "x" * 5000, "org", BIG_ORG, "downloads"])
NAME_PART = st.sampled_from(sorted({part for name in REAL_NAMES for part in name.split("/")})) | TEXT
DAY = st.dates().map(lambda d: d.isoformat()) | st.sampled_from(["2026-02-30", "2026-13-01", "20260101", "today"])


def value_for(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values a query parameter might get: valid by ``schema``, or broken in every way."""
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    kind = options[0] if options else {}
    broken = TEXT | st.integers() | st.lists(TEXT, max_size=3)
    if kind.get("type") == "integer":
        low, high = kind.get("minimum", -(2**31)), kind.get("maximum", 2**31)
        return st.integers(low, high) | st.integers() | broken
    if kind.get("type") == "array":
        items = kind.get("items", {})
        return st.lists(st.sampled_from(items.get("enum", [""])) | TEXT, max_size=4)
    if kind.get("format") == "date" or "YYYY" in str(schema.get("description", "")):
        return DAY | broken
    if "enum" in kind:
        return st.sampled_from(kind["enum"]) | broken
    return st.sampled_from(["model", "dataset", "downloads", "downloadsAllTime", BIG_ORG, f"{BIG_ORG}/repo"]) | broken


def path_strategy(template: str) -> st.SearchStrategy[str]:
    """Concrete paths for a path template: each ``{param}`` a real name, a near miss or any text."""
    parts = template.split("/")

    def segment(part: str) -> st.SearchStrategy[str]:
        if not part.startswith("{"):
            return st.just(part)
        return st.tuples(NAME_PART, st.booleans()).map(lambda v: quote(v[0], safe="") if v[1] else v[0])

    return st.tuples(*(segment(p) for p in parts)).map("/".join)


def requests_from(spec: dict[str, Any]) -> st.SearchStrategy[tuple[str, str, list[tuple[str, str]]]]:
    """(operation, path, query pairs) for every GET operation of the document, and stray paths."""
    operations = []
    for template, ops in sorted(spec["paths"].items()):
        op = ops.get("get")
        if op is None:
            continue
        params = [p for p in op.get("parameters", []) if p["in"] == "query"]
        query = st.tuples(*(st.tuples(st.just(p["name"]), st.none() | value_for(p.get("schema", {})))
                            for p in params)) if params else st.just(())
        extra = st.lists(st.tuples(TEXT, TEXT), max_size=2)
        operations.append(st.tuples(st.just(template), path_strategy(template), query, extra)
                          .map(lambda v: (v[0], v[1], _pairs(v[2]) + list(v[3]))))
    stray = st.tuples(st.just("(not in the document)"),
                      st.lists(TEXT, min_size=1, max_size=4).map(lambda s: "/" + "/".join(s)),
                      st.just([]))
    return st.one_of(*operations, stray)


def _pairs(params: tuple[tuple[str, Any], ...]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name, value in params:
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            pairs.append((name, item if isinstance(item, str) else json.dumps(item)))
    return pairs


def fuzz(base: str, requests: int, token: str) -> dict[str, Any]:
    """Send ``requests`` generated requests to the API at ``base``; count them and every 5xx.

    Every request carries ``token`` (an operator's), so private endpoints are fuzzed past
    the access layer too.
    """
    client = httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"})
    spec = client.get("/openapi.json").json()
    statuses: Counter[int] = Counter()
    per_operation: Counter[str] = Counter()
    failures: list[dict[str, Any]] = []

    @settings(max_examples=requests, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(requests_from(spec))
    def send(request: tuple[str, str, list[tuple[str, str]]]) -> None:
        operation, path, query = request
        try:
            url = httpx.URL(base + (path if _sendable(path) else quote(path, safe="/%")), params=query)
        except httpx.InvalidURL:  # e.g. a raw "%" starting an escape of a control character
            url = httpx.URL(base + quote(path, safe="/"), params=query)
        reply = client.get(url)
        statuses[reply.status_code] += 1
        per_operation[operation] += 1
        if reply.status_code >= 500:
            failures.append({"operation": operation, "url": str(url)[:300], "status": reply.status_code,
                             "body": reply.text[:300]})

    started = time.monotonic()
    send()
    client.close()
    return {"requests": sum(statuses.values()), "server_errors": len(failures),
            "seconds": round(time.monotonic() - started, 1),
            "statuses": dict(sorted(statuses.items())), "operations": len(per_operation),
            "per_operation": dict(sorted(per_operation.items())), "failures": failures[:20]}


def _sendable(path: str) -> bool:
    # A request line cannot carry some characters raw (controls, spaces): such a path is
    # sent percent-encoded instead.
    try:
        httpx.URL("http://h" + path)
    except (httpx.InvalidURL, ValueError):
        return False
    return True


def run(requests: int, workdir: Path) -> dict[str, Any]:
    """Fill a fresh Redis, serve the API, fuzz it; return the figures."""
    redis = redis_process(workdir, durable=False)
    redis.start()
    try:
        url = f"redis://127.0.0.1:{redis.port}/0"
        asyncio.run(fill(url, REPOS))
        server = serve(url, workdir, workers=1)
        try:
            return fuzz(f"http://127.0.0.1:{server.port}", requests, asyncio.run(operator_token(url)))
        finally:
            server.stop()
    finally:
        redis.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench fuzz-api", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, help="requests to send [5,000]")
    parser.add_argument("--quick", action="store_true", help="600 requests")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fuzz-api-") as tmp:
        figures = run(600 if args.quick else args.requests, Path(tmp))
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"{figures['requests']:,} requests to {figures['operations']} operations in {figures['seconds']} s; "
              f"statuses {figures['statuses']}; 5xx answers: {figures['server_errors']}")
        for failure in figures["failures"]:
            print(f"  {failure['status']} {failure['operation']}: {failure['url']}\n      {failure['body']}")
    return 1 if figures["server_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
