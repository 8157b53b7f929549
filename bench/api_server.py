"""``python -m bench.api_server --redis-url URL --port N [--open]``: one API process for a benchmark.

Served as ``hubcounter api`` serves one process (``stream.api.serving.serve_app``, the same
uvicorn options), with the access layer configured from ``HUBCOUNTER_API_*``, or with
``--open`` without any access layer: no token check, no rate limit, no request limits or
security headers. The open one is the baseline the access layer's cost is measured against;
never serve it.
"""

from __future__ import annotations

import argparse

from stream.api.app import create_app
from stream.api.serving import serve_app
from stream.settings import AccessSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api_server", description=__doc__)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--open", action="store_true", help="without the access layer (the baseline)")
    args = parser.parse_args(argv)
    app = create_app(args.redis_url, freeze_gc=True, access=None if args.open else AccessSettings())
    serve_app(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
              timeout_graceful_shutdown=10, server_header=False)


if __name__ == "__main__":
    main()
