"""The batch reference against hand-computed counts, one rule at a time."""

from __future__ import annotations

import gzip
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from stream import reference
from stream.reference import Rejected, compute, read_message

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
T = "2026-11-21T10:00:00.000Z"
DAY = "2026-11-21"


def ev(**fields: Any) -> bytes:
    """A good model event (GET config.json at 10:00Z) with ``fields`` changed; None deletes."""
    event: dict[str, Any] = {"timestamp": T, "method": "GET", "status": 200,
                             "repoType": "model", "repoName": "org/m", "path": "config.json",
                             "revision": "main", "hashedIp": "ip1"}
    event.update(fields)
    return orjson.dumps({k: v for k, v in event.items() if v is not None})


def total(counts: dict[str, Any], key: str) -> int:
    return counts.get(key, {}).get("downloadsAllTime", 0)


def run(lines: list[bytes], metadata: Any = None, **kw: Any) -> dict[str, Any]:
    return compute(lines, metadata, kw.pop("now", NOW), **kw)


def test_output_shape() -> None:
    counts = run([ev(), ev(timestamp="2026-11-20T10:00:00Z"), ev(repoName="a/b")])
    assert counts == {
        "model:a/b": {"downloadsAllTime": 1, "daily": {DAY: 1}},
        "model:org/m": {"downloadsAllTime": 2, "daily": {"2026-11-20": 1, DAY: 1}},
    }
    assert list(counts) == sorted(counts)


@pytest.mark.parametrize(("method", "status", "counted"), [
    ("GET", 200, True), ("HEAD", 200, True), ("get", 200, True), ("Head", 302, True),
    ("GET", "200", True), ("GET", "304", True), ("GET", 206, True), ("GET", 399, True),
    ("GET", 307, True), ("GET", 199, False), ("GET", 400, False), ("GET", 401, False),
    ("GET", 404, False), ("GET", "404", False), ("GET", 500, False), ("GET", 503, False),
    ("POST", 200, False), ("PUT", 200, False), ("OPTIONS", 200, False), ("DELETE", 204, False),
    ("GET", "2OO", False), ("GET", " 200", False), ("GET", 200.0, False), ("GET", True, False),
    ("GET", None, False), (5, 200, False),
])
def test_method_and_status_filter(method: Any, status: Any, counted: bool) -> None:
    line = orjson.dumps({**orjson.loads(ev()), "method": method, "status": status})
    assert total(run([line]), "model:org/m") == int(counted)


@pytest.mark.parametrize(("library", "path", "counted"), [
    ("transformers", "config.json", True),
    ("transformers", "model.safetensors", False),
    ("transformers", "model-00001-of-00004.safetensors", False),
    ("transformers", "tokenizer.json", False),
    ("peft", "adapter_config.json", True),
    ("peft", "config.json", False),
    ("timm", "model.safetensors", True),
    ("timm", "config.json", False),
    ("diffusers", "model_index.json", True),
    ("diffusers", "unet/diffusion_pytorch_model.safetensors", False),
    ("diffusers", "sd_xl_base_1.0.safetensors", True),
    ("open_clip", "open_clip_model.safetensors", True),
    ("open_clip", "open_clip_config.json", False),
    ("nemo", "parakeet.nemo", True),
    ("keras", "model.keras", True),
    ("my-unknown-lib", "config.json", True),  # unknown library: the default rule
    ("my-unknown-lib", "model.pt", False),
    ("timm", "Llama-3-8B-Q4_K_M.gguf", True),  # GGUF always counts
    ("peft", "sub/dir/model-Q8_0.gguf", True),
    (None, "x-f16.gguf", True),
])
def test_model_library_rules(library: str | None, path: str, counted: bool) -> None:
    metadata = {"model:org/m": {"library_name": library, "tags": []}}
    assert total(run([ev(path=path)], metadata), "model:org/m") == int(counted)


def test_metadata_missing_update_and_tombstone() -> None:
    lines = [ev(path="config.json"), ev(path="adapter_config.json")]
    # no entry: default rule (config.json counts)
    assert run(lines)["model:org/m"]["downloadsAllTime"] == 1
    records = [
        {"key": "model:org/m", "value": {"library_name": "transformers"}},
        {"key": "model:org/m", "value": {"library_name": "peft", "tags": ["lora"]}},
    ]
    # update: the later record wins, peft counts adapter_config.json only
    counts = run([*lines, ev(path="adapter_config.json")], records)
    assert counts["model:org/m"]["downloadsAllTime"] == 2
    # tombstone: back to no library, the default rule
    tomb = [*records, {"key": "model:org/m", "value": None}]
    assert run(lines, tomb)["model:org/m"]["downloadsAllTime"] == 1
    # value without library_name: no library
    assert run(lines, [("model:org/m", {"tags": ["x"]})])["model:org/m"][
        "downloadsAllTime"] == 1


def test_metadata_forms() -> None:
    lines = [ev(path="adapter_config.json")]
    forms: list[Any] = [
        {"model:org/m": {"library_name": "peft"}},
        {"model:org/m": "peft"},
        {"model:org/m": '{"library_name": "peft"}'},
        [b'{"key": "model:org/m", "value": {"library_name": "peft"}}\n', b"\n", b"garbage"],
        [(b"model:org/m", b'{"library_name": "peft"}')],
        [("model:org/m", {"library_name": "peft"})],
    ]
    for form in forms:
        assert total(run(lines, form), "model:org/m") == 1, form
    assert total(run(lines, {"model:org/m": None}), "model:org/m") == 0


def ds(ts: str | int, user: str | None = "u1", ip: str | None = None, **kw: Any) -> bytes:
    return ev(timestamp=ts, repoType="dataset", repoName="org/d",
              path=kw.pop("path", "data/train-00000-of-00012.parquet"),
              hashedUserId=user, hashedIp=ip, **kw)


def test_dataset_every_file_counts_once_per_user_per_bucket() -> None:
    lines = [ds("2026-11-21T10:00:00Z", path=f"data/train-{i:05d}-of-00012.parquet")
             for i in range(12)]
    lines += [ds("2026-11-21T10:04:59.999Z", path="README.md")]
    assert total(run(lines), "dataset:org/d") == 1


def test_dataset_bucket_edges_are_epoch_aligned() -> None:
    # 10:04:59.999 and 10:05:00.000 are in different buckets, 10:05:00 and 10:09:59.999 not
    lines = [ds("2026-11-21T10:04:59.999Z"), ds("2026-11-21T10:05:00.000Z"),
             ds("2026-11-21T10:09:59.999Z"), ds("2026-11-21T10:10:00Z")]
    assert total(run(lines), "dataset:org/d") == 3
    # a bucket is aligned on the epoch, not on the user's first request
    lines = [ds("2026-11-21T10:02:00Z"), ds("2026-11-21T10:06:00Z")]
    assert total(run(lines), "dataset:org/d") == 2
    # the same instant written with an offset and as epoch ms is the same bucket
    epoch_ms = int(datetime(2026, 11, 21, 10, 1, tzinfo=UTC).timestamp() * 1000)
    lines = [ds("2026-11-21T12:00:30+02:00"), ds(epoch_ms)]
    assert total(run(lines), "dataset:org/d") == 1


def test_dataset_user_ip_and_anonymous() -> None:
    t = "2026-11-21T10:00:00Z"
    lines = [ds(t, user="u1"), ds(t, user="u1"), ds(t, user="u2"),  # 2 users -> 2
             ds(t, user=None, ip="ip9"), ds(t, user=None, ip="ip9"),  # one IP -> 1
             ds(t, user="u3", ip="ip9"),  # user id wins over the IP: a new user -> 1
             ds(t, user=None, ip="u1"),  # an IP equal to a user id is still an IP -> 1
             ds(t, user=None, ip=None), ds(t, user=None, ip=None)]  # anonymous: each -> 2
    assert total(run(lines), "dataset:org/d") == 7
    # other dataset, same user, same bucket: its own count
    other = ev(timestamp=t, repoType="dataset", repoName="org/e", hashedUserId="u1")
    assert total(run([*lines, other]), "dataset:org/e") == 1


def test_dataset_non_candidates_do_not_take_the_bucket() -> None:
    lines = [ds("2026-11-21T10:00:00Z", status=404), ds("2026-11-21T10:00:01Z", method="POST"),
             ds("2026-11-21T10:00:02Z", status=200)]
    assert total(run(lines), "dataset:org/d") == 1
    # a too-old request of the same user does not use the slot either: with this now the
    # 10:00:00 request is 1 s too old, the 10:00:02 one (same bucket) is inside
    late_now = datetime(2026, 11, 28, 10, 0, 1, tzinfo=UTC)
    lines = [ds("2026-11-21T10:00:00Z"), ds("2026-11-21T10:00:02Z")]
    result = reference.run(lines, now=late_now)
    assert total(result.counts, "dataset:org/d") == 1
    assert result.stats["dead:too_late"] == 1


def test_arrival_order_does_not_matter() -> None:
    lines = [ds(f"2026-11-21T10:{m:02d}:{s:02d}Z", user=u)
             for m in range(0, 15, 2) for s in (0, 30, 59) for u in ("u1", "u2", None)]
    lines += [ev(path=p) for p in ("config.json", "model.safetensors")] * 3
    expected = run(lines)
    rng = random.Random(1)
    for _ in range(20):
        rng.shuffle(lines)
        assert run(lines) == expected
    # minutes 0-14 fall in 3 buckets: 3 for u1, 3 for u2, and each of 24 anonymous ones
    assert total(expected, "dataset:org/d") == 3 + 3 + 24
    assert total(expected, "model:org/m") == 3


def test_spaces_never_count() -> None:
    lines = [ev(repoType="space", repoName="org/s", path=p)
             for p in ("app.py", "config.json", "model.safetensors", "x.gguf")]
    assert run(lines) == {}


def test_utc_day_of_offset_and_epoch_timestamps() -> None:
    lines = [ev(timestamp="2026-11-21T01:30:00+02:00"),  # 2026-11-20T23:30Z
             ev(timestamp="2026-11-20T23:30:00-05:00"),  # 2026-11-21T04:30Z
             ev(timestamp="2026-11-20T23:59:59.999Z"),
             ev(timestamp="2026-11-21T00:00:00Z"),
             ev(timestamp=int(datetime(2026, 11, 19, 23, 59, tzinfo=UTC).timestamp() * 1000))]
    assert run(lines)["model:org/m"]["daily"] == {"2026-11-19": 1, "2026-11-20": 2,
                                                  "2026-11-21": 2}


def test_lateness_window_edges() -> None:
    def at(dt: datetime) -> bytes:
        return ev(timestamp=dt.isoformat())

    ms = timedelta(milliseconds=1)
    inside = [at(NOW - timedelta(days=7)), at(NOW + timedelta(hours=1)), at(NOW)]
    outside = [at(NOW - timedelta(days=7) - ms), at(NOW + timedelta(hours=1) + ms)]
    assert total(run(inside + outside), "model:org/m") == 3
    lines = [at(NOW - timedelta(days=1)), at(NOW - timedelta(days=2))]
    assert total(run(lines, lateness=timedelta(days=1)), "model:org/m") == 1
    epoch_edge = int((NOW - timedelta(days=7)).timestamp() * 1000)
    assert total(run([ev(timestamp=epoch_edge), ev(timestamp=epoch_edge - 1)]),
                 "model:org/m") == 1


def url_ev(url: str, **fields: Any) -> bytes:
    return ev(url=url, repoType=None, repoName=None, path=None, revision=None, **fields)


def test_url_form_events() -> None:
    lines = [
        url_ev("/org/m/resolve/refs%2Fpr%2F1/config.json"),
        url_ev("https://cdn.example/org/m/resolve/main/config.json?download=true"),
        url_ev("/org/m/resolve/0123abcd/model.safetensors"),  # default rule: no
        url_ev("/datasets/org/d/resolve/main/data/train-00000-of-00002.parquet",
               hashedIp="a"),
        url_ev("/datasets/org/d/resolve/main/data/train-00001-of-00002.parquet",
               hashedIp="a"),  # same user and bucket
        url_ev("/spaces/org/s/resolve/main/app.py"),
        url_ev("/bert-base-uncased/resolve/main/config.json"),  # legacy bare name
        url_ev("/org/m/resolve/main/my%20model-Q4_K_M.gguf"),
        url_ev("/datasets/squad/resolve/main/plain_text/train-00000-of-00001.parquet"),
    ]
    assert run(lines) == {
        "dataset:org/d": {"downloadsAllTime": 1, "daily": {DAY: 1}},
        "dataset:squad": {"downloadsAllTime": 1, "daily": {DAY: 1}},
        "model:bert-base-uncased": {"downloadsAllTime": 1, "daily": {DAY: 1}},
        "model:org/m": {"downloadsAllTime": 3, "daily": {DAY: 3}},
    }


def url_parts(url: Any) -> tuple[str, str, str | None, str] | str:
    """What one url-form event reads as: (type, repo, revision, path), or the rejection reason."""
    read = read_message(url_ev(url))
    if isinstance(read, Rejected):
        return read.reason
    return (read.repo_type, read.repo, read.revision, read.path)


@pytest.mark.parametrize(("url", "parsed"), [
    ("/org/m/resolve/refs%2Fpr%2F1/a/b.json", ("model", "org/m", "refs/pr/1", "a/b.json")),
    ("/gpt2/resolve/main/config.json", ("model", "gpt2", "main", "config.json")),
    ("/datasets/org/d/resolve/v1/x.parquet", ("dataset", "org/d", "v1", "x.parquet")),
    ("/spaces/org/s/resolve/main/app.py", ("space", "org/s", "main", "app.py")),
    ("/org/m/resolve/main/resolve/x", ("model", "org/m", "main", "resolve/x")),
    # a repo named "resolve": org/name wins when a revision and a path follow
    ("/org/resolve/resolve/main/x", ("model", "org/resolve", "main", "x")),
    ("/resolve/resolve/main/x", ("model", "resolve", "main", "x")),
    ("/gpt2/resolve/resolve/x", ("model", "gpt2", "resolve", "x")),
    ("https://hub.example:443/org/m/resolve/main/x?download=true#top", ("model", "org/m", "main", "x")),
    ("/org/m/blob/main/config.json", "bad_url"),
    ("/api/models/org/m", "bad_url"),
    ("/org/m/resolve/main/", "bad_url"),
    ("/org/m/resolve/main/a//b", "bad_url"),
    ("//org/m/resolve/main/x", "bad_url"),
    ("/org/m/resolve/main", "bad_url"),
    ("org/m/resolve/main/config.json", "bad_url"),
    ("/org/m/resolve/main/%ff.bin", "bad_url"),
    ("", "bad_url"),
    ("not a url", "bad_url"),
    ("/org%2Fx/resolve/main/config.json", "bad_field"),  # a name never holds a '/'
    ("/org/bad--name/resolve/main/config.json", "bad_field"),
    (42, "bad_field"),
])
def test_url_form(url: Any, parsed: tuple[str, str, str, str] | str) -> None:
    assert url_parts(url) == parsed


def test_legacy_bare_repo_names() -> None:
    lines = [ev(repoName="gpt2"), ev(repoType="dataset", repoName="squad", hashedIp=None)]
    counts = run(lines, {"model:gpt2": {"library_name": "transformers"}})
    assert set(counts) == {"model:gpt2", "dataset:squad"}


@pytest.mark.parametrize("line", [
    b'{"timestamp": "2026-11-21T10:00:00Z", "method": "GET"',  # truncated JSON
    b"not json at all",
    b'["GET", 200]',
    b'"GET"',
    b"null",
    ev(timestamp=None), ev(method=None), ev(status=None), ev(repoType=None),
    ev(repoName=None), ev(path=None),
    ev(timestamp="2026-11-21T10:00:00"),  # no zone
    ev(timestamp="2026-11-21"),
    ev(timestamp="yesterday"), ev(timestamp=True), ev(timestamp=1.79e12),
    ev(repoType="collection"), ev(repoType="models"), ev(repoType=1),
    ev(repoName=42), ev(repoName=""), ev(repoName="a/b/c"), ev(repoName="/b"),
    ev(path=""), ev(path=7),
    url_ev("/org/m/tree/main"), url_ev("/org/m/resolve/main/"), url_ev(None),
    url_ev(5),
])
def test_malformed_records_are_ignored(line: bytes) -> None:
    result = reference.run([line, ev()], now=NOW)
    assert result.counts == {"model:org/m": {"downloadsAllTime": 1, "daily": {DAY: 1}}}
    assert sum(n for k, n in result.stats.items() if k.startswith("dead:")) == 1


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        compute([ev()], None, NOW.replace(tzinfo=None))


def test_cli(tmp_path: Path) -> None:
    log = tmp_path / "log.ndjson.gz"
    log.write_bytes(gzip.compress(b"\n".join([ev(path="adapter_config.json"), ev(),
                                              ev(repoType="space"), b"{bad"]) + b"\n"))
    meta = tmp_path / "meta.ndjson"
    meta.write_bytes(b'{"key": "model:org/m", "value": {"library_name": "peft"}}\n')
    result = CliRunner().invoke(reference.reference, [
        str(log), "--metadata", str(meta), "--now", "2026-11-21T12:00:00Z"])
    assert result.exit_code == 0, result.output
    out = orjson.loads(result.stdout)
    assert out == {"model:org/m": {"downloadsAllTime": 1, "daily": {DAY: 1}}}
    late = CliRunner().invoke(reference.reference, [
        str(log), "--now", "2026-12-21T12:00:00+00:00", "--lateness-days", "7"])
    assert orjson.loads(late.stdout) == {}
    bad = CliRunner().invoke(reference.reference, [str(log), "--now", "2026-11-21T12:00"])
    assert bad.exit_code == 2


def test_simulated_log_counts_do_not_depend_on_arrival_order() -> None:
    from stream.simulate import Simulation

    sim = Simulation(seed=12, repos=200, now=NOW, bad_fraction=0.03)
    lines = list(sim.lines(8_000))
    metadata = list(sim.metadata())
    expected = compute(lines, metadata, NOW)
    assert any(k.startswith("dataset:") for k in expected)
    random.Random(3).shuffle(lines)
    assert compute(lines, metadata, NOW) == expected


def test_cli_rejects_oversized_messages_with_the_workers_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The worker dead-letters a message over HUBCOUNTER_MAX_MESSAGE_BYTES; so must the reference.
    log = tmp_path / "log.ndjson"
    log.write_bytes(ev() + b"\n" + ev(userAgent="x" * 70_000) + b"\n")

    def counted(*options: str) -> int:
        result = CliRunner().invoke(reference.reference, [str(log), "--now", "2026-11-21T12:00:00Z", *options])
        assert result.exit_code == 0, result.output
        return total(orjson.loads(result.stdout), "model:org/m")

    assert counted() == 1  # the default limit, 64 KiB
    assert counted("--max-message-bytes", "100000") == 2
    monkeypatch.setenv("HUBCOUNTER_MAX_MESSAGE_BYTES", "100000")
    assert counted() == 2
    assert counted("--max-message-bytes", "1000") == 1


def test_reasons_are_counted_per_dead_letter_reason() -> None:
    lines = [ev(), ev(status="2xx"), b"{", ev(repoName="bad--name"), ev(timestamp="2026-11-01T00:00:00Z")]
    assert {k: v for k, v in reference.run(lines, now=NOW).stats.items() if k.startswith("dead:")} == {
        "dead:bad_field": 2, "dead:bad_json": 1, "dead:too_late": 1}
