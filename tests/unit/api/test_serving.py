"""Serving: several uvicorn workers keep TCP_NODELAY, and the ``api`` command checks its input."""

from __future__ import annotations

import asyncio
import socket

import pytest
from click.testing import CliRunner

from stream.api.commands import api
from stream.api.serving import TcpConfig
from stream.devstack import free_port

pytestmark = pytest.mark.unit


def test_the_shared_listening_socket_says_it_is_tcp() -> None:
    # uvicorn's own leaves proto 0, and asyncio then never sets TCP_NODELAY (~40 ms per request).
    sock = TcpConfig("stream.api.app:app_from_env", factory=True, host="127.0.0.1", port=free_port()).bind_socket()
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.get_inheritable()
        assert accepted_nodelay(sock) == 1
    finally:
        sock.close()


def accepted_nodelay(listener: socket.socket) -> int:
    """TCP_NODELAY of a connection asyncio accepts on ``listener``."""
    seen: asyncio.Future[int]

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            conn = transport.get_extra_info("socket")
            seen.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def run() -> int:
        nonlocal seen
        seen = asyncio.get_running_loop().create_future()
        server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        try:
            return await asyncio.wait_for(seen, 5)
        finally:
            writer.close()
            server.close()
    return asyncio.run(run())


def test_the_command_refuses_a_url_that_is_not_redis() -> None:
    result = CliRunner().invoke(api, ["--redis-url", "http://example.org"])
    assert result.exit_code == 2
    assert "expected redis[s]://" in result.output


def test_the_command_reads_redis_url_from_the_environment() -> None:
    result = CliRunner().invoke(api, ["--help"], env={"REDIS_URL": "redis://x:1/0"})
    assert result.exit_code == 0 and "REDIS_URL" in result.output
