"""Record batches written by clients other than aiokafka: librdkafka and Kafka's Java producer.

Real CDN log shippers are not aiokafka. :func:`write_foreign` fills a topic with the
simulator's traffic through librdkafka (``confluent-kafka``) and through Kafka's own Java
producer (``java/ScriptedProducer.java`` on the broker's classpath), with every codec, small
and large batches, and transactions committed and aborted, a librdkafka transaction
aborted while another producer's records land between its batches.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaException, Producer

from stream.devstack.kafka import java_argv
from stream.kafka import KafkaConnection

Record = tuple[bytes, bytes]
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
# (batch.size bytes, linger.ms): one-record batches up to batches of hundreds of records
BATCHING = ((2_000, 0), (64 * 1024, 5), (1024 * 1024, 50))
_JAVA_PRODUCER = Path(__file__).parent / "integration" / "java" / "ScriptedProducer.java"


@dataclass
class Written:
    """What went into the topic: the records of committed writes, and those aborted."""

    committed: list[Record] = field(default_factory=list)
    aborted: list[Record] = field(default_factory=list)


def write_foreign(connection: KafkaConnection, topic: str, records: Sequence[Record],
                  aborted: Sequence[Record]) -> Written:
    """Write ``records`` (all committed) and ``aborted`` (all rolled back) to ``topic``.

    Each client writes half of them: a run with each codec (batch sizes varied), one
    committed transaction, and one aborted transaction.
    """
    half, half_aborted = len(records) // 2, len(aborted) // 2
    written = Written()
    _librdkafka(connection, topic, records[:half], aborted[:half_aborted], written)
    _java(connection, topic, records[half:], aborted[half_aborted:], written)
    return written


def _chunks(records: Sequence[Record], n: int) -> list[Sequence[Record]]:
    """``records`` cut into ``n`` consecutive runs of (nearly) equal length."""
    return [records[i * len(records) // n:(i + 1) * len(records) // n] for i in range(n)]


def _plan(records: Sequence[Record], shift: int) -> list[tuple[str, int, int, Sequence[Record]]]:
    """(codec, batch.size, linger.ms, records) for every codec, each with a batching
    (``shift`` rotates which, so two clients cover more pairs), and one last chunk left for
    a committed transaction."""
    settings = [(codec, *BATCHING[(i + shift) % len(BATCHING)]) for i, codec in enumerate(CODECS)]
    return [(codec, size, linger, chunk) for (codec, size, linger), chunk in
            zip([*settings, ("zstd", 64 * 1024, 5)], _chunks(records, len(settings) + 1), strict=True)]


def _rdkafka_config(connection: KafkaConnection, **extra: object) -> dict[str, object]:
    if connection.security_protocol != "PLAINTEXT":
        raise ValueError("the foreign producers here speak plaintext only")
    return {"bootstrap.servers": connection.bootstrap, "acks": "all", **extra}


def _flush(producer: Producer) -> None:
    if producer.flush(60) != 0:
        raise AssertionError("librdkafka did not deliver every record within 60 s")


def _librdkafka(connection: KafkaConnection, topic: str, records: Sequence[Record],
                aborted: Sequence[Record], written: Written) -> None:
    failures: list[str] = []

    def report(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    plan = _plan(records, shift=0)
    for codec, size, linger, chunk in plan[:-1]:
        producer = Producer(_rdkafka_config(connection, **{"compression.type": codec, "batch.size": size,
                                                            "linger.ms": linger}))
        for key, value in chunk:
            producer.produce(topic, value, key, on_delivery=report)
            producer.poll(0)
        _flush(producer)
        written.committed += chunk
    # A transaction that aborts while a plain producer's records land between its batches,
    # then one that commits.
    txn = Producer(_rdkafka_config(connection, **{"transactional.id": f"{topic}-rdkafka", "compression.type": "lz4",
                                                  "linger.ms": 5}))
    plain = Producer(_rdkafka_config(connection, **{"compression.type": "snappy", "linger.ms": 5}))
    last = plan[-1][3]
    outside, in_commit = last[:len(last) // 2], last[len(last) // 2:]
    try:
        txn.init_transactions(30)
        txn.begin_transaction()
        for in_abort, between in ((aborted[:len(aborted) // 2], outside[:len(outside) // 2]),
                                  (aborted[len(aborted) // 2:], outside[len(outside) // 2:])):
            for key, value in in_abort:
                txn.produce(topic, value, key, on_delivery=report)
            _flush(txn)
            for key, value in between:
                plain.produce(topic, value, key, on_delivery=report)
            _flush(plain)
            written.aborted += in_abort
            written.committed += between
        txn.abort_transaction(30)
        txn.begin_transaction()
        for key, value in in_commit:
            txn.produce(topic, value, key, on_delivery=report)
        txn.commit_transaction(30)
        written.committed += in_commit
    except KafkaException as exc:
        raise AssertionError(f"librdkafka transaction failed: {exc}") from exc
    if failures:
        raise AssertionError(f"librdkafka could not deliver: {failures[:3]}")


def _java(connection: KafkaConnection, topic: str, records: Sequence[Record],
          aborted: Sequence[Record], written: Written) -> None:
    _rdkafka_config(connection)  # plaintext only, as above
    lines: list[str] = []
    plan = _plan(records, shift=1)
    for codec, size, linger, chunk in plan[:-1]:
        lines.append(f"PRODUCER {codec} {size} {linger} -")
        lines += _record_lines(chunk)
        lines.append("FLUSH")
        written.committed += chunk
    # Flushed before the abort: the aborted records are in the log, for the readers to skip.
    lines += [f"PRODUCER gzip {64 * 1024} 5 {topic}-java", "BEGIN", *_record_lines(aborted), "FLUSH",
              "ABORT", "BEGIN", *_record_lines(plan[-1][3]), "COMMIT"]
    written.aborted += aborted
    written.committed += plan[-1][3]
    argv = java_argv(str(_JAVA_PRODUCER), connection.bootstrap, topic, heap="-Xmx256m")
    done = subprocess.run(argv, input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise AssertionError(f"the Java producer failed ({done.returncode}):\n{done.stderr[-3000:]}")


def _record_lines(records: Sequence[Record]) -> list[str]:
    def b64(data: bytes | None) -> str:
        return "-" if data is None else base64.b64encode(data).decode()
    return [f"R {b64(key)} {b64(value)}" for key, value in records]
