"""The faust-streaming app around the counting worker.

Faust runs what it is good at here: the process life cycle and signals, the web server
(``/metrics``, ``/healthz``, ``/readyz``) and timers. The per-event path does not go
through a Faust stream (see :mod:`stream.worker`), and neither does the metadata map:
a Faust agent would read only the partitions its consumer group hands it, while every
worker needs the whole map.

``faust -A stream.app worker`` works too: ``stream.app.app`` is built on first access
from the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

import faust
import mode
from faust.web import Request, Response, View

from stream import kafka
from stream.errors import HubcounterError, StoreRefused, StoreUnavailable
from stream.rules.versions import load_rules
from stream.settings import Settings
from stream.worker import CountingWorker

log = logging.getLogger(__name__)

# A rolling deploy's SIGTERM grants 10 s before SIGKILL. The batch in flight gets 6 s to
# finish and commit; whatever still runs at 9 s (Faust's own teardown, a consumer waiting
# for a group join to finish before it can leave) is cut short by exiting.
_STOP_BUDGET_S = 6.0
_EXIT_DEADLINE_S = 9.0
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


class _ShellBoot(faust.App.BootStrategy):
    """Start Faust's web server, timers and services, but none of its Kafka clients.

    The worker reads and writes Kafka with its own aiokafka clients. Faust's would join a
    consumer group of their own and run a consumer thread that, although idle, wakes
    and takes the interpreter lock from the hot path.
    """

    enable_kafka = False


class _ShellApp(faust.App):
    BootStrategy = _ShellBoot


def create_app(settings: Settings) -> tuple[faust.App, CountingWorker]:
    """Build the Faust app and the counting worker it runs (in this process: see
    :func:`return_large_buffers`)."""
    return_large_buffers()
    registry, version = load_rules(settings.rules_file, settings.rules_name)
    worker = CountingWorker(settings, registry, version=version)
    app = _ShellApp(
        settings.group,  # an id only: Faust talks to no broker here (see _ShellBoot)
        web_bind=settings.web_host, web_host=settings.web_host, web_port=settings.web_port, web_in_thread=False,
        autodiscover=False,
        # Faust wants a data directory even without tables; keep it out of the cwd.
        datadir=str(Path(tempfile.gettempdir()) / f"hubcounter-faust-{settings.group}"),
    )

    @app.service
    class Counting(mode.Service):
        """Runs the worker's loop; on stop, lets it finish its batch and commit."""

        _task: asyncio.Task | None = None

        async def on_start(self) -> None:
            self._task = asyncio.create_task(worker.run(), name="counting-worker")
            self._task.add_done_callback(lambda task: _exit_unless_stopping(task, worker))
            asyncio.get_running_loop().add_signal_handler(
                signal.SIGHUP, lambda: asyncio.ensure_future(reload_rules(settings, worker)))

        async def on_stop(self) -> None:
            _exit_after(_EXIT_DEADLINE_S)
            worker.stop()
            if self._task is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(self._task), _STOP_BUDGET_S)
                except TimeoutError:
                    log.error("worker did not stop within %.0f s; abandoning its batch", _STOP_BUDGET_S)
                    self._task.cancel()

    @app.timer(interval=60.0)
    async def roll_leaderboards() -> None:
        # Keeps the 30-day leaderboards current on quiet days too, and folds the breakdowns
        # of days just closed; both no-ops within a day.
        if worker.ready:
            with contextlib.suppress(StoreUnavailable, StoreRefused):  # the next tick, or batch, rolls
                await worker.store.roll_windows(worker.clock())
                if settings.analytics:
                    await worker.store.fold_closed_days(worker.clock())

    @app.timer(interval=2.0)
    async def heartbeat() -> None:
        if worker.ready:
            await worker.heartbeat()

    @app.timer(interval=5.0)
    async def probe_waiting() -> None:
        await worker.probe_waiting()

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(worker.metrics.render(), content_type="text/plain; version=0.0.4")

    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            ok, body = worker.health.live()
            return self.json(body, status=200 if ok else 503)

    @app.page("/readyz")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            ok, body = worker.health.ready()
            body |= {"metadata_loaded": worker.feed.ready.is_set(), "metadata_repos": len(worker.libraries)}
            return self.json(body, status=200 if ok else 503)

    return app, worker


async def reload_rules(settings: Settings, worker: CountingWorker) -> bool:
    """Reread ``--rules`` and count with it from the next batch on (SIGHUP).

    A file that does not load (unreadable, a rule that does not compile) is refused with
    one error line, and the rules in effect keep counting. True if the rules changed.
    """
    try:
        registry, version = load_rules(settings.rules_file, settings.rules_name)
    except HubcounterError as exc:
        current = worker.rules_version.label if worker.rules_version else "the rules in effect"
        log.error("rules reload refused, still counting with %s: %s", current, exc)
        return False
    if worker.rules_version is not None and version.version == worker.rules_version.version \
            and version.name == worker.rules_version.name:
        log.info("rules reload: %s is already in effect", version.label)
        return False
    await worker.reload_rules(registry, version)
    return True


def _exit_after(seconds: float) -> None:
    """Exit the process ``seconds`` from now if it is still stopping then.

    Safe at any moment, like a SIGKILL: nothing unapplied was committed, and the markers
    make a successor's replay count each record once. Exit status 0: stopping was asked for.
    """
    def give_up() -> None:
        log.error("still stopping %.0f s after the stop began: exiting now (a successor replays "
                  "whatever was not committed)", seconds)
        logging.shutdown()
        os._exit(0)

    timer = threading.Timer(seconds, give_up)
    timer.daemon = True
    timer.start()


def _exit_unless_stopping(task: asyncio.Task, worker: CountingWorker) -> None:
    """End the process when the hot path ends without being asked to.

    A dead hot path must not leave a process that looks alive. Exiting at once is safe:
    nothing unapplied was committed, so a successor replays it.
    """
    if task.cancelled() or worker.stopping:
        return
    failure = task.exception()
    refused = kafka.refusal(failure) if failure is not None else None
    if refused is not None:  # a setting to fix, not a bug: one line, no traceback
        log.critical("counting worker stopped: %s", refused)
    elif failure is not None:
        log.critical("counting worker failed", exc_info=failure)
    else:
        log.critical("counting worker ended without being asked to stop")
    logging.shutdown()
    os._exit(70)


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run the worker until SIGTERM/SIGINT (the ``hubcounter worker`` command).

    Raises :class:`KafkaAccessError` before anything starts if Kafka refuses the worker
    for good (TLS, credentials, ACLs on its topics or group).
    """
    asyncio.run(kafka.preflight(settings.kafka, [settings.events_topic, settings.metadata_topic,
                                                 settings.dlq_topic], settings.group))
    app, _ = create_app(settings)
    faust.Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()


def return_large_buffers() -> bool:
    """Have the C allocator give every large buffer back to the system when it is freed.

    glibc raises its mmap threshold each time it frees an mmapped block, up to 32 MiB; from
    then on the fetch responses (megabytes each) come from the heap, which it seldom
    shrinks, and the worker's RSS stays near the most it ever held. A fixed threshold
    keeps them mmapped (measured in ``python -m bench all --only memory``, a million repos:
    peak RSS 314 -> 293 MiB, after counting 302 -> 264 MiB). Returns whether it could:
    there is nothing to do outside glibc.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 128 * 1024))


def __getattr__(name: str) -> Any:
    if name == "app":
        return create_app(Settings())[0]
    raise AttributeError(name)
