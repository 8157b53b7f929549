"""The deterministic traffic generator: sessions of client requests rendered as log events.

Sessions start along a timeline (spread over the last few days before ``now``, or paced
at a live rate from ``now``); each picks a repo by popularity, a client and a behaviour,
and produces its requests. Events are released in *arrival* order through a heap, so some
arrive late (CDN log shipping jitter) and concurrent sessions interleave. Everything is
drawn from ``random.Random`` instances seeded from ``seed``: same seed, same bytes.
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import orjson

from stream.simulate import badrecords, clients
from stream.simulate.catalogue import Catalogue, Repo, build_catalogue
from stream.simulate.clients import Client

TYPE_SHARES = {"model": 0.85, "dataset": 0.12, "space": 0.03}  # of sessions
OFFSETS = (120, -300, 330, 540, -480, 60, 600, -600)  # minutes east of UTC, for +hh:mm stamps
RETURN_SHARE = 0.12  # of sessions whose client comes back later the same day
NOMINAL_EVENTS = 1_000_000  # pacing of an unbounded history run


@dataclass(frozen=True, slots=True)
class SimRecord:
    """One produced record: Kafka key, encoded value, and labels for tests and stats."""

    key: bytes
    value: bytes
    behaviour: str
    bad: str | None
    timestamp_ms: int


class _Stamps:
    """Fast ISO 8601 formatting of epoch milliseconds (one strftime per minute)."""

    def __init__(self) -> None:
        self._prefix: dict[int, str] = {}

    def iso(self, ms: int, offset_min: int = 0) -> str:
        local = ms + offset_min * 60_000
        minute, rest = divmod(local, 60_000)
        prefix = self._prefix.get(minute)
        if prefix is None:
            if len(self._prefix) > 200_000:
                self._prefix.clear()
            prefix = datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%dT%H:%M:")
            self._prefix[minute] = prefix
        sec, milli = divmod(rest, 1000)
        if offset_min == 0:
            return f"{prefix}{sec:02d}.{milli:03d}Z"
        sign = "+" if offset_min > 0 else "-"
        hh, mm = divmod(abs(offset_min), 60)
        return f"{prefix}{sec:02d}.{milli:03d}{sign}{hh:02d}:{mm:02d}"


def _epoch_ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt!r}: give a timezone-aware UTC time")
    return int(dt.timestamp() * 1000)


def url_of(repo_type: str, name: str, revision: str, path: str) -> str:
    """The resolve URL of a file, percent-encoded as the CDN logs it."""
    prefix = {"model": "", "dataset": "/datasets", "space": "/spaces"}[repo_type]
    return f"{prefix}/{name}/resolve/{quote(revision, safe='')}/{quote(path)}"


class Simulation:
    """A deterministic hub traffic simulation (see the module docstring).

    ``repos`` is the number of model repos; datasets and spaces default to 10% and 6.7%
    of it. Without ``live_rate`` the events are spread over ``[start, now]`` (``start``
    defaults to ``now - days``); with it, they start at ``now`` and advance ``1/live_rate``
    seconds of event time per event. ``bad_fraction`` of the records are malformed or out
    of the lateness window; ``url_fraction`` of the good ones use the ``url`` form.
    """

    def __init__(self, seed: int = 0, repos: int = 30_000, now: datetime | None = None, *,
                 datasets: int | None = None, spaces: int | None = None,
                 start: datetime | None = None, days: float = 3.0,
                 bad_fraction: float = 0.0, url_fraction: float = 0.03,
                 live_rate: float | None = None, lateness: timedelta = timedelta(days=7)):
        if not 0.0 <= bad_fraction <= 1.0 or not 0.0 <= url_fraction <= 1.0:
            raise ValueError("bad_fraction and url_fraction are shares between 0 and 1")
        self.seed = seed
        self.now = datetime.now(UTC) if now is None else now
        self.now_ms = _epoch_ms(self.now)
        self.start_ms = _epoch_ms(start) if start is not None else self.now_ms - int(
            days * 86_400_000)
        if live_rate is None and self.start_ms >= self.now_ms - 3_600_000:
            raise ValueError("the history window must start more than an hour before now")
        self.live_rate = live_rate
        self.bad_fraction = bad_fraction
        self.url_fraction = url_fraction
        self.lateness_ms = int(lateness.total_seconds() * 1000)
        n_datasets = max(1, repos // 10) if datasets is None else datasets
        n_spaces = max(1, repos * 2 // 30) if spaces is None else spaces
        # separate streams: the catalogue does not change when only traffic code changes
        self.catalogue: Catalogue = build_catalogue(
            random.Random(f"{seed}:catalogue"), repos, n_datasets, n_spaces)
        crng = random.Random(f"{seed}:clients")
        self.clients = clients.make_clients(crng, max(2_000, repos))
        self.ci_clients = clients.make_clients(crng, 300, ci=True)
        present = [t for t in TYPE_SHARES if self.catalogue.repos[t]]
        self._types = tuple(present)
        self._type_weights = tuple(TYPE_SHARES[t] for t in present)
        self._client_cum = _cum_zipf(len(self.clients), 0.8)

    # -- metadata --------------------------------------------------------------------

    def metadata(self) -> Iterator[tuple[str, dict[str, Any] | None]]:
        """Repo metadata records in topic order: ``(key, value)``, value None = tombstone."""
        yield from self.catalogue.metadata

    def metadata_records(self) -> Iterator[tuple[bytes, bytes | None]]:
        """The metadata as Kafka would carry it: encoded key and value (None: tombstone)."""
        for key, value in self.catalogue.metadata:
            yield key.encode(), None if value is None else orjson.dumps(value)

    def metadata_lines(self) -> Iterator[bytes]:
        """The metadata in NDJSON form, ``{"key": ..., "value": ...}`` per line."""
        for key, value in self.catalogue.metadata:
            yield orjson.dumps({"key": key, "value": value})

    # -- events ----------------------------------------------------------------------

    def events(self, count: int | None = None) -> Iterator[dict[str, Any] | bytes]:
        """Event objects in arrival order; records that are not JSON objects come as bytes."""
        for rec in self.records(count):
            try:
                obj = orjson.loads(rec.value)
            except orjson.JSONDecodeError:
                yield rec.value
                continue
            yield obj if isinstance(obj, dict) else rec.value

    def lines(self, count: int | None = None) -> Iterator[bytes]:
        """The NDJSON lines (without newline) of :meth:`records`."""
        for rec in self.records(count):
            yield rec.value

    def records(self, count: int | None = None, expected: int | None = None
                ) -> Iterator[SimRecord]:
        """``count`` records (unbounded when None) in arrival order.

        ``expected`` sets the pacing of a history run (default: ``count``, or a nominal
        million when unbounded) so that the events fill the window.
        """
        rng = random.Random(f"{self.seed}:traffic")
        if self.live_rate:
            base, pace = self.now_ms, 1000.0 / self.live_rate
        else:
            window = self.now_ms - 1_800_000 - self.start_ms  # sessions run up to ~30 min
            base, pace = self.start_ms, window / max(1, expected or count or NOMINAL_EVENTS)
        heap: list[tuple[int, int, SimRecord]] = []
        followups: list[tuple[int, int, Repo, Client, str]] = []
        state = _Render(self, rng)
        generated = emitted = 0
        while count is None or emitted < count:
            cursor = base + int(generated * pace)
            while followups and followups[0][0] <= cursor:
                at, _, repo, client, first = heapq.heappop(followups)
                generated += state.session(heap, at, repo, client, first, followups, True)
            repo = self.catalogue.pick(rng, rng.choices(self._types, self._type_weights)[0])
            generated += state.session(heap, cursor, repo, None, "", followups, False)
            cursor = base + int(generated * pace)
            while heap and heap[0][0] <= cursor:
                yield heapq.heappop(heap)[2]
                emitted += 1
                if emitted == count:
                    return

    def pick_client(self, rng: random.Random) -> Client:
        """A client; a few heavy users make many sessions (Zipf over the client pool)."""
        cum = self._client_cum
        return self.clients[bisect.bisect(cum, rng.random() * cum[-1])]


def _cum_zipf(n: int, exponent: float) -> tuple[float, ...]:
    total, out = 0.0, []
    for i in range(n):
        total += 1.0 / (i + 1) ** exponent
        out.append(total)
    return tuple(out)


class _Render:
    """Turns sessions into encoded records; holds the per-run caches."""

    def __init__(self, sim: Simulation, rng: random.Random):
        self.sim = sim
        self.rng = rng
        self.stamps = _Stamps()
        self.seq = 0
        self.day_ms = 86_400_000

    def session(self, heap: list[tuple[int, int, SimRecord]], at: int, repo: Repo,
                client: Client | None, first: str, followups: list[Any], returning: bool
                ) -> int:
        """Generate one session's records into ``heap``; returns how many."""
        rng, sim = self.rng, self.sim
        mix = clients.mix_for(repo)
        if returning:
            behaviour = clients.RETURNING
            # a returning dataset user often reloads for real (a fresh process, no cache)
            fn = (clients.BEHAVIOURS[first] if repo.repo_type == "dataset"
                  and rng.random() < 0.5 else clients.warm_reload)
        elif repo.gated and rng.random() < clients.GATED_SHARE:
            behaviour = clients.GATED_DENIED
            fn = clients.gated
        else:
            behaviour = rng.choices(mix.names, mix.weights)[0]
            fn = clients.BEHAVIOURS[behaviour]
        if client is None:
            client = (rng.choice(sim.ci_clients) if behaviour == clients.CI_RUNNER
                      else sim.pick_client(rng))
        requests = fn(rng, repo)
        if not returning and rng.random() < RETURN_SHARE:
            day_end = (at // self.day_ms + 1) * self.day_ms
            later = at + int(rng.uniform(0.1, 1.0) * (day_end - at))
            if later < sim.now_ms - 1_800_000 or sim.live_rate:
                self.seq += 1
                heapq.heappush(followups, (later, self.seq, repo, client, behaviour))
        agent = clients.agent_for(rng, behaviour, repo, client)
        roll = rng.random()
        revision = ("main" if roll < 0.9 else repo.commit if roll < 0.98 else "refs/pr/1")
        omit_revision = rng.random() < 0.1
        key = repo.key.encode()
        stamps, bad_fraction = self.stamps, sim.bad_fraction
        for offset, method, path, status, nbytes in requests:
            ts = at + int(offset * 1000)
            fmt = rng.random()
            stamp: str | int = (stamps.iso(ts) if fmt < 0.85 else
                                stamps.iso(ts, OFFSETS[int(fmt * 1000) % len(OFFSETS)])
                                if fmt < 0.93 else ts)
            quirk = rng.random()  # some CDNs log the verb as sent, or the status as text
            event: dict[str, Any] = {
                "timestamp": stamp,
                "method": method.lower() if quirk < 0.03 else method,
                "status": str(status) if 0.03 <= quirk < 0.06 else status,
            }
            if rng.random() < sim.url_fraction:
                event["url"] = url_of(repo.repo_type, repo.name, revision, path)
            else:
                event["repoType"] = repo.repo_type
                event["repoName"] = repo.name
                event["path"] = path
                if not omit_revision:
                    event["revision"] = revision
            if client.user_id is not None:
                event["hashedUserId"] = client.user_id
            elif client.ip is not None:
                event["hashedIp"] = client.ip
            event["userAgent"] = agent
            if client.country is not None:
                event["country"] = client.country
                event["region"] = client.region
            if nbytes:
                event["bytes"] = nbytes
            event["requestId"] = f"{rng.getrandbits(64):016x}"
            bad = None
            if bad_fraction and rng.random() < bad_fraction:
                bad, value = badrecords.spoil(rng, event, sim.now_ms, sim.lateness_ms, stamps)
            else:
                value = orjson.dumps(event)
            # most logs ship within seconds; a few lag by minutes or hours
            lag = rng.random()
            arrival = ts + (0 if lag < 0.95 else int(rng.uniform(0, 120_000)) if lag < 0.99
                            else int(rng.expovariate(1 / 1_800_000)))
            self.seq += 1
            heapq.heappush(heap, (arrival, self.seq,
                                  SimRecord(key, value, behaviour, bad, ts)))
        return len(requests)
