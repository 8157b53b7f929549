"""The read API and the dashboard: Hub-shaped JSON and CSV over the Redis counters.

Stateless: every request reads Redis through :class:`stream.store.reader.CounterReader`,
so any number of API processes can serve behind a load balancer. It never imports the
worker.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Lazy: `hubcounter worker` imports the CLI, and with it this package; FastAPI and the
    # app load only when something asks for them.
    if name == "create_app":
        from stream.api.app import create_app

        return create_app
    raise AttributeError(name)
