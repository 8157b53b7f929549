"""NDJSON files (plain and gzip), the Kafka sink against a fake producer, and the CLI."""

from __future__ import annotations

import asyncio
import gzip
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner
from click.testing import CliRunner

from stream import kafka
from stream.kafka import KafkaConnection
from stream.simulate import Simulation, produce_metadata, produce_to_kafka, write_metadata, write_ndjson
from stream.simulate.commands import parse_rate, simulate
from tests.unit.simulate.conftest import NOW

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return Simulation(seed=9, repos=300, now=NOW, bad_fraction=0.02)


@pytest.mark.parametrize("name", ["events.ndjson", "events.ndjson.gz"])
def test_ndjson_round_trip(sim: Simulation, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    assert write_ndjson(sim, path, count=25_001) == 25_001
    raw = path.read_bytes()
    if name.endswith(".gz"):
        assert raw[:2] == b"\x1f\x8b"
        raw = gzip.decompress(raw)
    assert raw.split(b"\n")[:-1] == list(sim.lines(25_001))
    assert raw.endswith(b"\n")


def test_metadata_file(sim: Simulation, tmp_path: Path) -> None:
    path = tmp_path / "meta.ndjson"
    n = write_metadata(sim, path)
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert len(rows) == n == len(sim.catalogue.metadata)
    assert [(r["key"], r["value"]) for r in rows] == list(sim.metadata())


class FakeBatch:
    """Holds up to 100 records, then reports itself full, as a BatchBuilder does."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes | None, bytes | None]] = []

    def append(self, *, key: bytes | None, value: bytes | None, timestamp: int | None
               ) -> object | None:
        if len(self.records) == 100:
            return None
        self.records.append((key, value))
        return object()


def _done() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


class FakeProducer:
    """Records what would go to Kafka; every send is delivered at once."""

    last: FakeProducer

    def __init__(self, **config: Any):
        self.config = config
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []
        self.stopped = False
        self.partitions: set[tuple[bytes | None, int]] = set()
        FakeProducer.last = self

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None
                   ) -> asyncio.Future[None]:
        self.sent.append((topic, key, value))
        return _done()

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}

    def create_batch(self) -> FakeBatch:
        return FakeBatch()

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int
                         ) -> asyncio.Future[None]:
        assert batch.records, "an empty batch was sent"
        self.partitions.update((key, partition) for key, _ in batch.records)
        self.sent += [(topic, key, value) for key, value in batch.records]
        return _done()


def test_kafka_sink_sends_metadata_first_then_keyed_events(
        sim: Simulation, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka, "AIOKafkaProducer", FakeProducer)
    n = asyncio.run(produce_to_kafka(sim, KafkaConnection("localhost:9092"), "cdn", "meta", count=12_345))
    producer = FakeProducer.last
    assert n == 12_345 and producer.stopped
    assert producer.config["bootstrap_servers"] == "localhost:9092"
    topics = [t for t, _, _ in producer.sent]
    n_meta = len(sim.catalogue.metadata)
    assert topics == ["meta"] * n_meta + ["cdn"] * n
    assert [(k, v) for _, k, v in producer.sent[:n_meta]] == list(sim.metadata_records())
    assert any(v is None for _, _, v in producer.sent[:n_meta])  # tombstones stay null
    events = [(r.key, r.value) for r in sim.records(n)]
    # batches per partition reorder across keys, never within a key
    sent = [(k, v) for _, k, v in producer.sent[n_meta:]]
    assert sorted(sent) == sorted(events)
    for key in {k for k, _ in events[:50]}:
        assert [e for e in sent if e[0] == key] == [e for e in events if e[0] == key]
    # one partition per key, as the default partitioner (murmur2) picks it
    keys = [k for k, _ in producer.partitions]
    assert len(keys) == len(set(keys))
    partitioner = DefaultPartitioner()
    assert all(partitioner(k, [0, 1, 2], [0, 1, 2]) == p for k, p in producer.partitions)


def test_metadata_can_go_alone_before_the_events(sim: Simulation, monkeypatch: pytest.MonkeyPatch) -> None:
    # The demo sends the metadata before its worker starts, then events without it.
    monkeypatch.setattr(kafka, "AIOKafkaProducer", FakeProducer)
    assert asyncio.run(produce_metadata(sim, KafkaConnection("b:1"), "meta")) == len(sim.catalogue.metadata)
    assert [(k, v) for _, k, v in FakeProducer.last.sent] == list(sim.metadata_records())
    assert {t for t, _, _ in FakeProducer.last.sent} == {"meta"} and FakeProducer.last.stopped
    assert asyncio.run(produce_to_kafka(sim, KafkaConnection("b:1"), "cdn", None, count=500)) == 500
    assert [t for t, _, _ in FakeProducer.last.sent] == ["cdn"] * 500


def test_kafka_sink_duration_and_rate(sim: Simulation, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka, "AIOKafkaProducer", FakeProducer)
    assert asyncio.run(produce_to_kafka(sim, KafkaConnection("b:1"), "t", "m", duration=0.0)) == 100
    began = time.monotonic()
    assert asyncio.run(produce_to_kafka(sim, KafkaConnection("b:1"), "t", "m", count=300, rate=1_000)) == 300
    assert time.monotonic() - began >= 0.25
    with pytest.raises(ValueError, match="count or duration"):
        asyncio.run(produce_to_kafka(sim, KafkaConnection("b:1"), "t", "m"))


def test_cli_writes_gzip_and_metadata(tmp_path: Path) -> None:
    out, meta = tmp_path / "e.ndjson.gz", tmp_path / "m.ndjson"
    args = ["--seed", "4", "--repos", "200", "--count", "3000", "--now", "2026-11-21T12:00:00Z",
            "--bad-fraction", "0.01", "--out", str(out), "--metadata-out", str(meta)]
    result = CliRunner().invoke(simulate, args)
    assert result.exit_code == 0, result.output
    lines = gzip.decompress(out.read_bytes()).splitlines()
    assert len(lines) == 3000
    expected = Simulation(seed=4, repos=200, now=NOW, bad_fraction=0.01)
    assert lines == list(expected.lines(3000))
    assert len(meta.read_bytes().splitlines()) == len(expected.catalogue.metadata)


@pytest.mark.parametrize("args", [
    [],  # no destination
    ["--out", "x.ndjson", "--bootstrap", "b:1"],
    ["--out", "x.ndjson", "--now", "2026-11-21T12:00:00"],  # naive
    ["--bootstrap", "b:1", "--live"],  # live needs a rate
])
def test_cli_usage_errors(args: list[str]) -> None:
    result = CliRunner().invoke(simulate, ["--repos", "50", *args])
    assert result.exit_code == 2, result.output


def test_parse_rate() -> None:
    assert parse_rate("500") == 500.0
    assert parse_rate("500/s") == 500.0
    assert parse_rate("6000/m") == 100.0


def test_cli_kafka_mode_live(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka, "AIOKafkaProducer", FakeProducer)
    args = ["--repos", "100", "--count", "500", "--rate", "100000/s", "--live",
            "--now", "2026-11-21T12:00:00Z", "--bootstrap", "b:1", "--topic", "ev"]
    result = CliRunner().invoke(simulate, args)
    assert result.exit_code == 0, result.output
    events = [v for t, _, v in FakeProducer.last.sent if t == "ev"]
    assert len(events) == 500
    stamps = [orjson.loads(v)["timestamp"] for v in events if v and v.startswith(b"{")]
    assert min(str(s) for s in stamps if isinstance(s, str)) >= "2026-11-21T"
