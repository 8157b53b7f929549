"""The reference's analytics: what each counted download says, computed plainly over a log.

Independent of the worker's code like the rest of the reference: it reads the shipped
classes data (or an operator's file) itself and decides with plain ``re.search``, first
match wins. The figures, per ``type:repo`` and UTC day:

* ``class``, ``client``, ``country``, ``file``: counted downloads by each value (each
  sums to the day's count); a dataset download is its 5-minute slot's first request;
* ``downloaders``: the distinct ``hashedUserId``/``hashedIp`` of counted downloads;
* ``uncounted`` (models): candidate requests (GET/HEAD 200-399) the rules did not count,
  by path, and ``library``, the library that judged them.

:func:`folded` gives the bounded view the store keeps and the API serves: a dimension's
top K values by downloads (ties by value), the rest summed as ``""`` ("other").
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pycountry
import yaml

DIMENSIONS = ("class", "client", "country", "file")
OTHER = ""


class _Classes:
    """Traffic class and client of a user agent, from the classes data file."""

    def __init__(self, path: str | Path | None = None):
        if path is None:
            text = resources.files("stream.classes").joinpath("data", "classes.yaml").read_text()
        else:
            text = Path(path).read_text()
        data = yaml.safe_load(text)
        self.classes = [(e["name"], [re.compile(p, re.I) for p in e["patterns"]]) for e in data["classes"]]
        self.clients = [(e["name"], [re.compile(p, re.I) for p in e["patterns"]]) for e in data["clients"]]

    @staticmethod
    def _first(entries: list, agent: str, fallback: str) -> str:
        return next((name for name, patterns in entries if any(p.search(agent) for p in patterns)), fallback)

    def of(self, agent: str | None) -> tuple[str, str]:
        agent = (agent or "")[:512]  # the classes' contract: only a user agent's first 512 characters
        return self._first(self.classes, agent, "other"), self._first(self.clients, agent, "unknown")


_COUNTRIES = {country.alpha_2 for country in pycountry.countries}


def country_of(value: str | None) -> str:
    """The ISO 3166-1 alpha-2 code, upper case; ``unknown`` for anything else."""
    code = value.upper() if isinstance(value, str) and len(value) == 2 else None
    return code if code in _COUNTRIES else "unknown"


@dataclass
class DayFigures:
    """One repo's analytics on one UTC day."""

    values: dict[str, Counter[str]] = field(default_factory=lambda: {d: Counter() for d in DIMENSIONS})
    downloaders: set[tuple[str, str]] = field(default_factory=set)
    uncounted: Counter[str] = field(default_factory=Counter)
    library: str | None = None

    def shape(self, top: int | None, uncounted_top: int | None) -> dict[str, Any]:
        """The day's figures; with ``top``, each dimension folded to its top values (see :func:`folded`)."""
        return {**{d: _fold(self.values[d], top) for d in DIMENSIONS}, "uniques": len(self.downloaders),
                "uncounted": _fold(self.uncounted, uncounted_top), "library": self.library}


class Analytics:
    """Collects the analytics of a log as the reference counts it."""

    def __init__(self, classes_file: str | Path | None = None):
        self.classes = _Classes(classes_file)
        self.days: dict[str, dict[str, DayFigures]] = {}
        self._agents: dict[str | None, tuple[str, str]] = {}

    def _day(self, key: str, day: str) -> DayFigures:
        return self.days.setdefault(key, {}).setdefault(day, DayFigures())

    def counted(self, key: str, day: str, request: Any) -> None:
        """A counted download (a dataset's: the first request of its slot)."""
        if request.user_agent not in self._agents:
            self._agents[request.user_agent] = self.classes.of(request.user_agent)
        klass, client = self._agents[request.user_agent]
        figures = self._day(key, day)
        for dimension, value in zip(DIMENSIONS, (klass, client, country_of(request.country), request.path),
                                    strict=True):
            figures.values[dimension][value] += 1
        if request.user is not None:
            figures.downloaders.add(request.user)

    def missed(self, key: str, day: str, path: str, library: str | None) -> None:
        """A model candidate the rules did not count."""
        figures = self._day(key, day)
        figures.uncounted[path] += 1
        figures.library = library

    def shape(self, top: int | None = None, uncounted_top: int | None = None) -> dict[str, dict[str, dict[str, Any]]]:
        """``{"type:repo": {"YYYY-MM-DD": {dimension: {value: n}, "uniques": n, "uncounted": {...}}}}``.

        ``top`` and ``uncounted_top`` fold each day's values as the store keeps them (None: all).
        """
        return {key: {day: figures.shape(top, uncounted_top) for day, figures in sorted(days.items())}
                for key, days in sorted(self.days.items())}


def _fold(values: dict[str, int], k: int | None) -> dict[str, int]:
    return dict(values) if k is None else folded(values, k)


def folded(values: dict[str, int], k: int) -> dict[str, int]:
    """The top ``k`` values by count (ties by value), the rest summed under ``OTHER`` (an
    ``OTHER`` already there is part of the rest, never one of the top)."""
    ranked = sorted(((v, n) for v, n in values.items() if v != OTHER), key=lambda item: (-item[1], item[0]))
    kept = dict(ranked[:k])
    rest = values.get(OTHER, 0) + sum(n for _, n in ranked[k:])
    if rest:
        kept[OTHER] = rest
    return kept
