"""Commands packed by hiredis are byte for byte what redis-py's own packer sends."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import AbstractConnection, Connection
from redis.exceptions import DataError

from stream.store import packing

pytestmark = pytest.mark.unit

CASES = [
    ("EVALSHA", "a" * 40, 3, "hc:{1}:repo:model:org/name", "hc:{1}:bd:model:org/é:2026-11-30", "k3", b"\x00\xff" * 500),
    ("SCRIPT LOAD", "return 1"),  # a command's words in the first argument are sent apart
    (b"CLUSTER SLOTS",),
    ("HINCRBY", "key", "field", 12),
    ("ZINCRBY", "board", 2.5, "member"),
    ("SET", "big", "x" * 100_000),
    ("SET", "view", memoryview(b"abc")),
]


@pytest.fixture
def python_pack():
    original = AbstractConnection.pack_command
    AbstractConnection.pack_command = packing._python_pack  # type: ignore[method-assign]
    yield
    AbstractConnection.pack_command = original  # type: ignore[method-assign]


@pytest.mark.parametrize("args", CASES)
def test_hiredis_packs_what_redis_py_packs(python_pack, args):
    connection = Connection()
    expected = b"".join(bytes(chunk) for chunk in connection.pack_command(*args))
    packing.install()
    assert packing.installed()
    assert b"".join(connection.pack_command(*args)) == expected


def test_an_argument_that_cannot_be_sent_is_a_data_error():
    packing.install()
    with pytest.raises(DataError):
        Connection().pack_command("SET", "k", object())
