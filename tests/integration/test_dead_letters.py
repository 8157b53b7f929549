"""Every kind of bad input lands in the dead-letter topic with its reason, counting nothing."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tests.support import create_topics, read_topic, send, snapshot, start_worker, wait_committed

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def _event(**overrides: object) -> bytes:
    event = {"timestamp": NOW.isoformat(), "method": "GET", "status": 200, "repoType": "model",
             "repoName": "org/good", "path": "config.json", "hashedUserId": "u1"}
    event.update(overrides)
    return orjson.dumps({k: v for k, v in event.items() if v is not None})


BAD = {
    # in a field the decoder skips: only a check of the whole message finds it
    "not_utf8": _event()[:-1] + b', "userAgent": "Mozilla \xff\xfe"}',
    "bad_json": b'{"timestamp": ',
    "not_object": b'["GET", "/org/x/resolve/main/config.json"]',
    "missing_field": _event(method=None),
    "bad_field": _event(status="two hundred"),
    "bad_timestamp": _event(timestamp="2026-11-21T10:00:00"),
    "unknown_repo_type": _event(repoType="collection"),
    "bad_url": orjson.dumps({"timestamp": NOW.isoformat(), "method": "GET", "status": 200,
                             "url": "/org/x/blob/main/config.json"}),
    "oversized": _event(userAgent="x" * 70_000),
    "too_late": _event(timestamp=(NOW - timedelta(days=8)).isoformat()),
    "too_early": _event(timestamp=(NOW + timedelta(hours=2)).isoformat()),
}


def test_each_bad_input_is_dead_lettered_with_its_reason(settings, workdir):
    # Bad records sit between good ones: the worker must keep going and count only the good.
    create_topics(settings, partitions=2)
    records = [(b"model:org/good", _event())]
    for reason, value in BAD.items():
        records += [(f"bad:{reason}".encode(), value), (b"model:org/good", _event())]
    last = send(settings, settings.events_topic, records)
    worker = start_worker(settings, workdir)
    try:
        wait_committed(settings, last)
        dead = read_topic(settings, settings.dlq_topic, expected=len(BAD))
    finally:
        worker.stop()

    by_key = {record.key.decode(): orjson.loads(record.value) for record in dead}
    assert set(by_key) == {f"bad:{reason}" for reason in BAD}
    for reason, value in BAD.items():
        letter = by_key[f"bad:{reason}"]
        assert letter["reason"] == reason, letter
        assert letter["detail"]
        assert letter["topic"] == settings.events_topic
        assert letter["original_bytes"] == len(value)
        assert letter["original_sha256"] == hashlib.sha256(value).hexdigest()
        kept = base64.b64decode(letter["original_b64"])
        assert kept == value[:settings.dlq_keep_bytes]
        assert letter["original_truncated"] == (len(value) > settings.dlq_keep_bytes)
    today = NOW.date().isoformat()
    assert snapshot(settings) == {
        "model:org/good": {"downloadsAllTime": len(BAD) + 1, "daily": {today: len(BAD) + 1}}}


def test_a_message_near_the_broker_limit_gets_a_bounded_dead_letter(settings, workdir):
    # Embedded whole and base64-encoded, a rejected 1 MB message would make a dead letter
    # over the broker's limit that could never be sent: the letter keeps a bounded prefix.
    create_topics(settings, partitions=1)
    huge = _event(userAgent="x" * 1_000_000)
    last = send(settings, settings.events_topic, [(b"big", huge), (b"model:org/good", _event())])
    worker = start_worker(settings, workdir)
    try:
        wait_committed(settings, last)
        [dead] = read_topic(settings, settings.dlq_topic, expected=1)
    finally:
        worker.stop()
    letter = orjson.loads(dead.value)
    assert letter["reason"] == "oversized"
    assert len(dead.value) < settings.dlq_keep_bytes * 4 // 3 + 2048
    assert letter["original_bytes"] == len(huge) and letter["original_truncated"] is True
    assert letter["original_sha256"] == hashlib.sha256(huge).hexdigest()
    assert base64.b64decode(letter["original_b64"]) == huge[:settings.dlq_keep_bytes]
    assert snapshot(settings)["model:org/good"]["downloadsAllTime"] == 1
