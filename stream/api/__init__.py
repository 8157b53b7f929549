"""The read API and the dashboard: Hub-shaped JSON and CSV over the Redis counters.

Stateless: every request reads Redis through :class:`stream.store.reader.CounterReader`,
so any number of API processes can serve behind a load balancer. It never imports the
worker.
"""

from stream.api.app import create_app

__all__ = ["create_app"]
