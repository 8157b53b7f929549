"""Running the app under uvicorn, in one process or several sharing one listening socket.

With ``workers > 1`` uvicorn binds the socket itself and leaves its ``proto`` at 0; the
connections it accepts then never get ``TCP_NODELAY`` (asyncio only sets it for
``IPPROTO_TCP`` sockets), so every keep-alive answer written in two pieces waits for the
client's delayed ACK: about 40 ms per request on Linux (uvicorn issue #3149). The listening
socket bound here says it is TCP, so every worker's connections are sent without delay.
"""

from __future__ import annotations

import inspect
import socket
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

APP_FACTORY = "stream.api.app:app_from_env"


class TcpConfig(uvicorn.Config):
    """A uvicorn config whose TCP listening socket is marked ``IPPROTO_TCP``."""

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
            # Same descriptor, re-wrapped: Python hands the proto on to accepted sockets.
            sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
            sock.set_inheritable(True)
        return sock


def serve_app(app: Any, **options: Any) -> None:
    """Run one uvicorn server in this process (``app`` an ASGI app or an import string)."""
    uvicorn.Server(uvicorn.Config(app, **options)).run()


def serve_workers(workers: int, **options: Any) -> None:
    """Run ``workers`` uvicorn processes on one socket; each builds the app with ``app_from_env``."""
    config = TcpConfig(APP_FACTORY, factory=True, workers=workers, **options)
    sock = config.bind_socket()
    if "target" in inspect.signature(Multiprocess).parameters:  # uvicorn < 0.30
        Multiprocess(config, target=uvicorn.Server(config).run, sockets=[sock]).run()  # type: ignore[call-arg]
    else:
        Multiprocess(config, sockets=[sock]).run()
