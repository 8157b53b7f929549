"""A rule change end to end: the worker reloads its rules live, history is recounted from
Kafka and from archives while it counts, applied, undone, and killed mid-recount.

One month of simulated traffic is counted under the old rules (OpenCLIP's earlier
``*pytorch_model.bin`` rule); the worker's rules file then changes (OpenCLIP back to its
four weight files, and diffusers' filter counting a pipeline by its UNet) and SIGHUP
switches it while live traffic flows. Every check compares the whole of Redis with the
independent reference (its own rule evaluator, given each rules file): the old rules
for each partition's records before the recorded switch point, the new rules after it
and, once a recount is applied, for every record of the recounted days.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import redis
import yaml

from stream.api import create_app
from stream.api.keys import BUCKET_PREFIX
from stream.counting import MAX_AHEAD
from stream.devstack.services import _ENV_NAMES
from stream.errors import EventError
from stream.events import parse_event
from stream.recount import job, shadow
from stream.recount.judge import Period
from stream.reference import RuleBook, run
from stream.reference.analytics import Analytics
from stream.reference.messages import Request as RefRequest
from stream.reference.messages import read_message
from stream.settings import Settings
from stream.simulate import Simulation
from stream.store import keys
from stream.store.connect import RedisConfig, connect
from tests.integration.api.support import ApiClient, create_token
from tests.support import (
    Expected,
    Feeder,
    assert_exact,
    create_topics,
    isolated_settings,
    read_topic,
    redis_client,
    send,
    start_worker,
    wait_committed,
)

pytestmark = pytest.mark.integration

OLD_RULES = {"libraries": {"open_clip": {"countDownloads": 'path_extension:"bin" AND path_filename:*pytorch_model'}}}
NEW_RULES = {"name": "after", "libraries": {"diffusers": {"filter": {"bool": {"should": [
    {"term": {"path": "model_index.json"}}, {"regexp": {"path": "unet/[^/]*\\.safetensors"}}],
    "minimum_should_match": 1}}}}}
LATENESS_DAYS = 40  # the worker counts a whole simulated month as it arrives


def _write_rules(path: Path, rules: dict) -> None:
    path.write_text(yaml.safe_dump(rules))


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HUBCOUNTER_RULES"}
    for name, value in settings.model_dump().items():
        if value is not None and name != "rules_file":
            env[_ENV_NAMES[name]] = str(value)
    return env


def _recount_process(settings: Settings, workdir: Path, *args: str) -> subprocess.Popen:
    """``hubcounter recount ARGS`` started in the background."""
    return subprocess.Popen([sys.executable, "-m", "stream", "recount", *args], env=_env(settings), cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _recount_ok(settings: Settings, workdir: Path, *args: str) -> str:
    """Run ``hubcounter recount ARGS`` to the end; its output."""
    done = subprocess.run([sys.executable, "-m", "stream", "recount", *args], env=_env(settings), cwd=workdir,
                          capture_output=True, timeout=180)
    output = (done.stdout + done.stderr).decode()
    assert done.returncode == 0, output[-3000:]
    return output


def _switch_points(settings: Settings, version: str) -> dict[int, int]:
    """Per partition, where the worker started counting with ``version`` (every shard agrees)."""
    found: dict[int, set[int]] = {}
    with redis_client(settings.redis_url) as client:
        for shard in range(settings.shards):
            for name, value in client.hgetall(keys.rules(shard)).items():
                field = name.decode()
                if "@" in field and value.decode() == version:
                    partition = int(field.partition("@")[0].rpartition(":")[2])
                    found.setdefault(partition, set()).add(int(field.partition("@")[2]))
    assert all(len(points) == 1 for points in found.values()), found
    return {p: min(points) for p, points in found.items()}


def _live_state(settings: Settings) -> dict[str, object]:
    """Every live counter and breakdown key with its content (not the recount's own keys, nor
    the API's rate-limit buckets, which expire on their own once full)."""
    out: dict[str, object] = {}
    with redis_client(settings.redis_url) as client:
        for raw in client.scan_iter(match="hc:*", count=1000):
            name = raw.decode()
            if ":rc:" in name or name.startswith(("hc:recount", "hc:rules:", "hc:worker", BUCKET_PREFIX)):
                continue
            kind = client.type(raw).decode()
            if kind == "hash":
                out[name] = client.hgetall(raw)
            elif kind == "zset":
                out[name] = client.zrange(raw, 0, -1, withscores=True)
            elif kind == "set":
                out[name] = sorted(client.smembers(raw))
            else:
                out[name] = client.get(raw)
    return out


class History:
    """The log as sent (partition, offset, value) and the rule files, for the expectations."""

    def __init__(self, settings: Settings, sim: Simulation, now: datetime, old: Path, new: Path):
        self.settings, self.sim, self.now, self.old, self.new = settings, sim, now, old, new

    def expected(self, records: list, switch: dict[int, int], period: tuple[str, str] | None,
                 merged: tuple[str, str]) -> Expected:
        """Old rules before each partition's switch point, new after it and, given a recounted
        ``period``, for every model record of its days. The downloaders of the ``merged``
        period's days are those of both rules: a recount applied to an open day adds its
        own to them, and a HyperLogLog cannot forget (an undo leaves them)."""
        before_out, before_in, rest = [], [], []
        for record in records:
            request = read_message(record.value)
            day = _day(request) if isinstance(request, RefRequest) and request.repo_type == "model" else None
            if day is None or record.offset >= switch[record.partition]:
                rest.append(record.value)
            else:
                if merged[0] <= day <= merged[1]:
                    before_in.append(record.value)
                (rest if period is not None and period[0] <= day <= period[1] else before_out).append(record.value)
        metadata = list(self.sim.metadata())
        lateness = timedelta(days=LATENESS_DAYS)
        collected = Analytics()
        old_part = run(before_out, metadata, self.now, lateness, RuleBook(self.old), analytics=collected)
        new_part = run(rest, metadata, self.now, lateness, RuleBook(self.new), analytics=collected)
        union = Analytics()
        run(before_in, metadata, self.now, lateness, RuleBook(self.old), analytics=union)
        for key, days in union.days.items():
            for day, figures in days.items():
                if figures.downloaders and key in collected.days and day in collected.days[key]:
                    collected.days[key][day].downloaders |= figures.downloaders
        counts: dict[str, dict] = {}
        for part in (old_part.counts, new_part.counts):
            for key, entry in part.items():
                merged = counts.setdefault(key, {"downloadsAllTime": 0, "daily": {}})
                merged["downloadsAllTime"] += entry["downloadsAllTime"]
                for day, n in entry["daily"].items():
                    merged["daily"][day] = merged["daily"].get(day, 0) + n
        for entry in counts.values():
            entry["daily"] = dict(sorted(entry["daily"].items()))
        return Expected(counts, collected.shape())


def assert_leaderboards(settings: Settings, expected: Expected) -> None:
    """Every leaderboard agrees with the expected counts: each day's, the 30-day window's
    (the sum of its days) and the all-time one; and every counted repo is in its org index."""
    counts = expected.counts
    with redis_client(settings.redis_url) as client:
        days = sorted({day for entry in counts.values() for day in entry["daily"]})
        wrong: list[tuple] = []
        for shard in range(settings.shards):
            mine = {k: v for k, v in counts.items() if keys.shard_of(k, settings.shards) == shard}
            for repo_type in keys.COUNTED_TYPES:
                typed = {k.partition(":")[2]: v for k, v in mine.items() if k.startswith(repo_type + ":")}
                start, end = (v.decode() for v in client.hmget(keys.meta(shard), f"{repo_type}:start",
                                                                f"{repo_type}:end"))
                boards = {keys.all_time(shard, repo_type): {r: v["downloadsAllTime"] for r, v in typed.items()},
                          keys.window(shard, repo_type): {
                              r: n for r, v in typed.items()
                              if (n := sum(c for d, c in v["daily"].items() if start <= d <= end))}}
                boards |= {keys.day(shard, repo_type, day): {r: v["daily"][day] for r, v in typed.items()
                                                             if v["daily"].get(day)} for day in days}
                for name, want in boards.items():
                    got = {m.decode(): int(n) for m, n in client.zrange(name, 0, -1, withscores=True)}
                    if got != want:
                        wrong.append((name, {r: (got.get(r), want.get(r)) for r in got.keys() | want.keys()
                                             if got.get(r) != want.get(r)}))
        missing = [key for key, v in counts.items() if v["downloadsAllTime"] and (org := keys.org_of(key))
                   and not client.sismember(keys.org_repos(org), key)]
    assert not wrong, f"{len(wrong)} leaderboards differ, e.g. {wrong[:2]}"
    assert not missing, f"{len(missing)} repos missing from their org index, e.g. {missing[:3]}"


def _day(request: RefRequest) -> str:
    return datetime.fromtimestamp(request.ts_ms // 86_400_000 * 86_400, UTC).date().isoformat()


def _month(stack, workdir: Path, name: str, rules_file: Path, seed: int, repos: int,
           events: int) -> tuple[Settings, Simulation, datetime, list]:
    """Redis emptied; the old and new rules files written (``old.yaml``, ``new.yaml``) and
    ``rules_file``, the worker's, holding the old rules; topics of 4 partitions with the
    metadata of a simulated month sent, and its events (not sent)."""
    redis.Redis.from_url(stack.redis_url).flushall()
    _write_rules(workdir / "old.yaml", OLD_RULES)
    _write_rules(workdir / "new.yaml", NEW_RULES)
    _write_rules(rules_file, OLD_RULES)
    settings = isolated_settings(stack, name, lateness_days=LATENESS_DAYS, rules_file=str(rules_file),
                                 rules_name="before")
    now = datetime.now(UTC)
    sim = Simulation(seed=seed, repos=repos, now=now, days=30, bad_fraction=0.01,
                     lateness=timedelta(days=LATENESS_DAYS))
    create_topics(settings, partitions=4)
    send(settings, settings.metadata_topic, sim.metadata_records())
    return settings, sim, now, [(r.key, r.value) for r in sim.records(events)]


def test_rule_change_recounted_applied_undone(stack, workdir: Path) -> None:
    rules_file = workdir / "rules.yaml"
    settings, sim, now, month = _month(stack, workdir, "recount", rules_file, seed=41, repos=800, events=16_000)
    old_file, new_file = workdir / "old.yaml", workdir / "new.yaml"
    history = History(settings, sim, now, old_file, new_file)

    worker = start_worker(settings, workdir)
    try:
        wait_committed(settings, send(settings, settings.events_topic, month))
        # A rules file that does not load is refused; the old rules keep counting.
        rules_file.write_text("libraries: {open_clip: {countDownloads: 'path:(('}}\n")
        worker.signal(signal.SIGHUP)
        _wait_logged(worker.log_path, "rules reload refused, still counting with before")
        assert worker.running
        _write_rules(rules_file, NEW_RULES)
        worker.signal(signal.SIGHUP)
        new_version = _wait_version(settings, "after")
        live_sim = Simulation(seed=41, repos=800, now=now, live_rate=2000.0)  # the same repos, live
        live = [(r.key, r.value) for r in live_sim.records(6_000)]
        feeder = Feeder(settings, live, rate=1500.0, cycle=True).start()
        _wait_switched(settings, new_version, 4)
        first = (now - timedelta(days=22)).date().isoformat()
        period = (first, now.date().isoformat())

        # Recount from Kafka and apply, both while live traffic is counted: the feeder
        # runs until the apply is done.
        out = _recount_ok(settings, workdir, "--rules", str(new_file), "--from", first,
                          "--format", "table", "--apply")
        assert "library diffusers" in out and "library open_clip" in out, out
        assert "config files among them" in out, out
        live_sent = _stop(settings, feeder)
        records = read_topic(settings, settings.events_topic, len(month) + live_sent)
        switch = _switch_points(settings, new_version)
        assert set(switch) == {0, 1, 2, 3}
        applied = history.expected(records, switch, period, period)
        assert_exact(settings, applied)
        assert_leaderboards(settings, applied)
        report = orjson.loads(next(workdir.glob("recount-rc-*.json")).read_bytes())

        # An apply interrupted after its chunks were done (its record left "applying") is
        # finished by running it again: each chunk is applied once, so nothing moves.
        with redis_client(settings.redis_url) as client:
            client.hset(keys.recount(report["id"]), "state", "applying")
        _recount_ok(settings, workdir, "--apply", "--id", report["id"])
        assert _state(settings, report["id"]) == "applied"
        assert_exact(settings, applied)
        changed = {lib["library"]: lib for lib in report["libraries"]}
        assert changed["open_clip"]["change"] > 0 and changed["diffusers"]["change"] != 0, report["libraries"]
        assert report["applicable"] and report["switched"]
        _assert_api_versions(settings, report, now, old_version=_wait_version(settings, "before"),
                             new_version=new_version)

        # Undo: back to the old rules before the switch point, exactly.
        _recount_ok(settings, workdir, "--undo", report["id"])
        undone = history.expected(records, switch, None, period)
        assert_exact(settings, undone)
        assert_leaderboards(settings, undone)
        before = _live_state(settings)

        # An archive recount killed at a random moment of its work leaves every live key as it was.
        # The archive holds what the CDN logged before the switch: the month, and the live
        # requests a partition counted before its switch point (a batch in flight at SIGHUP).
        # Not the events timed over an hour ahead of the test's start, which the worker
        # dead-lettered as too early: an archive records no arrival time, so the first of them
        # would be on time against the latest event time read (docs/RECOUNT.md, "From archives").
        archive = workdir / "month.ndjson.gz"
        ahead_ms = int((now + MAX_AHEAD).timestamp() * 1000)
        before_switch = [r.value for r in records if r.offset < switch[r.partition] and _event_ms(r.value) <= ahead_ms]
        with gzip.open(archive, "wb", compresslevel=1) as out_file:
            out_file.write(b"\n".join(before_switch) + b"\n")
        args = ("--rules", str(new_file), "--from", first, "--source", str(archive))
        killed = _recount_process(settings, workdir, *args)
        counting = _wait_counting(settings, killed)
        time.sleep(random.uniform(0.0, 0.3))
        killed.send_signal(signal.SIGKILL)
        assert killed.wait(timeout=10) == -signal.SIGKILL  # killed, not finished
        assert _state(settings, counting) == "counting"  # its shadow was never whole
        assert _live_state(settings) == before

        # Restarted (live traffic counted meanwhile again), it counts again from the start,
        # and applied gives the same history as Kafka's.
        feeder = Feeder(settings, live, rate=1500.0, cycle=True).start()
        _recount_ok(settings, workdir, *args, "--format", "csv")
        _recount_ok(settings, workdir, "--apply", "--id", _latest_ready(settings))
        live_sent += _stop(settings, feeder)
        records = read_topic(settings, settings.events_topic, len(month) + live_sent)
        reapplied = history.expected(records, switch, period, period)
        assert_exact(settings, reapplied)
        assert_leaderboards(settings, reapplied)
    finally:
        worker.stop()


def _stop(settings: Settings, feeder: Feeder) -> int:
    """Stop a cycling feeder, once the worker has committed what it sent; how many it sent."""
    feeder.stop()
    wait_committed(settings, feeder.join())
    return feeder.sent


def _wait_version(settings: Settings, name: str, timeout: float = 30.0) -> str:
    """The version named ``name``, once the worker recorded it (it counts with it next)."""
    deadline = time.monotonic() + timeout
    with redis_client(settings.redis_url) as client:
        while time.monotonic() < deadline:
            for version, raw in client.hgetall(keys.RULE_VERSIONS).items():
                if orjson.loads(raw)["name"] == name:
                    return version.decode()
            time.sleep(0.1)
    raise AssertionError(f"the worker did not record rules named {name!r}")


def _assert_api_versions(settings: Settings, report: dict, now: datetime, old_version: str, new_version: str) -> None:
    """The daily series and the CSV say which rules counted each day of a recounted repo."""
    repo = report["repos"][0]
    name, org = repo["repo"].partition(":")[2], repo["repo"].partition(":")[2].partition("/")[0]
    api = ApiClient(create_app(settings.redis_url, clock=lambda: now))
    try:
        first = (now - timedelta(days=29)).date().isoformat()
        daily = api.get(f"/api/models/{name}/downloads", params={"start": first, "rulesVersion": "true"}).json()
        said = {d["date"]: d.get("rulesVersion", "") for d in daily["daily"]}
        for day in repo["daily"]:
            assert new_version in said[day["date"]].split(","), (day, said)
        assert all(v.split(",")[0] == old_version for d, v in said.items() if v and d < report["period"]["from"])
        assert "rulesVersion" not in api.get(f"/api/models/{name}/downloads").json()["daily"][0]
        token = create_token(settings.redis_url, org, name=f"recount-{org}")
        rows = api.get(f"/api/organizations/{org}/download-breakdown", params={"rulesVersion": "true"},
                       headers={"Authorization": f"Bearer {token}"}).text.splitlines()
        assert rows[0].endswith(",rulesVersion")
        mine = [row.split(",") for row in rows[1:] if row.split(",")[1] == name]
        assert mine and all(row[5] == "+".join(said[row[3][:10]].split(",")) for row in mine), mine
    finally:
        api.close()


def _wait_logged(log: Path, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise AssertionError(f"{log} never said {text!r}")
        time.sleep(0.1)


def _wait_switched(settings: Settings, version: str, partitions: int, timeout: float = 60.0) -> None:
    """Until every partition has a batch counted with ``version`` (its switch point recorded)."""
    deadline = time.monotonic() + timeout
    while len(_switch_points(settings, version)) < partitions:
        if time.monotonic() > deadline:
            raise AssertionError(f"not every partition switched to {version}")
        time.sleep(0.1)


def _wait_counting(settings: Settings, proc: subprocess.Popen, timeout: float = 60.0) -> str:
    """The id of the recount ``proc`` runs, once it is recorded as counting (its work begun)."""
    deadline = time.monotonic() + timeout
    with redis_client(settings.redis_url) as client:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the recount ended before it was seen counting"
            for raw in client.zrange(keys.RECOUNTS, 0, -1):
                if client.hget(keys.recount(raw.decode()), "state") == b"counting":
                    return raw.decode()
            time.sleep(0.01)
    raise AssertionError("the recount was never recorded as counting")


def _state(settings: Settings, recount_id: str) -> str:
    with redis_client(settings.redis_url) as client:
        return (client.hget(keys.recount(recount_id), "state") or b"").decode()


def _latest_ready(settings: Settings) -> str:
    with redis_client(settings.redis_url) as client:
        for raw in reversed(client.zrange(keys.RECOUNTS, 0, -1)):
            if client.hget(keys.recount(raw.decode()), "state") == b"ready":
                return raw.decode()
    raise AssertionError("no ready recount")


def test_recount_jobs_give_the_same_shadow_and_report(stack, workdir: Path) -> None:
    """``--jobs 2`` (partitions, or runs of archive files, judged by two processes) writes the
    very shadow and report of ``--jobs 1``, from Kafka and from archives. The archives are
    out of order (the newest days first) under a short lateness, so the second job's share
    is judged by a watermark it could not see: the parent must judge it again."""
    settings, _, now, month = _month(stack, workdir, "recount-jobs", workdir / "old.yaml", seed=43, repos=600,
                                     events=12_000)
    new_file = workdir / "new.yaml"
    worker = start_worker(settings, workdir)
    try:
        wait_committed(settings, send(settings, settings.events_topic, month))
    finally:
        worker.stop()
    newest_first = sorted((value for _, value in month if value), key=_event_ms, reverse=True)
    files = []
    for i in range(3):  # the newest 4,000 events, then the next, then the oldest
        path = workdir / f"part-{i}.ndjson"
        path.write_bytes(b"\n".join(newest_first[i * 4000:(i + 1) * 4000]) + b"\n")
        files.append(str(path))
    period = Period((now - timedelta(days=29)).date(), now.date())
    short = settings.model_copy(update={"lateness_days": 7})

    async def recount(sources: tuple[str, ...], jobs: int, use: Settings) -> tuple[dict, dict]:
        client = await connect(RedisConfig(use.redis_url, "false"))
        try:
            report = await job.recount(client, use, job.Request(str(new_file), None, period, None, sources,
                                                                None, jobs))
            shards = await job.stored_shards(client)
            stored = {}
            for shard, entries in (await shadow.read(client, shards, report["id"])).items():
                for change, _ in entries:
                    hll = keys.shadow_downloaders(shard, report["id"], change.repo, change.day)
                    stored[(change.repo, change.day)] = (change, await client.get(hll))
            await job.discard(client, report["id"])
            return {k: v for k, v in report.items() if k not in ("seconds", "created")}, stored
        finally:
            await client.aclose()

    for sources, use in (((job.KAFKA,), settings), (tuple(files), short)):
        one = asyncio.run(recount(sources, 1, use))
        two = asyncio.run(recount(sources, 2, use))
        assert one[0]["events"].get("judged", 0) > 100, one[0]["events"]  # enough to prove something
        assert one[1], "the recount changed nothing: no proof"
        assert two == one


def _event_ms(value: bytes) -> int:
    """An event's time (0 for one the worker dead-letters)."""
    try:
        return parse_event(value).ts_ms
    except EventError:
        return 0
