"""Traffic class and client of a download, decided from its user agent by rules that are data.

The rules (``data/classes.yaml``, or an operator's file that replaces it) are two ordered
lists of entries, each a name and case-insensitive regular expressions searched anywhere
in the user agent's first :data:`AGENT_CHARS` characters (real ones are far shorter; a
hostile one, and a CDN passes headers of many KiB, then costs no more to judge than a real
one); the first entry with a matching pattern wins. A download is exactly one
traffic class of :data:`TRAFFIC_CLASSES` (``other`` when no class matches) and one client
(``unknown`` when none matches). Pure: no Kafka, no Redis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stream.errors import ConfigError

TRAFFIC_CLASSES: Final = ("ci", "bot", "mirror", "browser", "other")
NO_CLASS: Final = "other"
NO_CLIENT: Final = "unknown"
AGENT_CHARS: Final = 512
_CACHE_MAX = 200_000  # distinct user agents remembered; most traffic repeats a few thousand


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[\w.-]+$")
    description: str = ""
    patterns: list[str] = Field(min_length=1)
    examples: list[str] = []


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    classes: list[_Entry]
    clients: list[_Entry]


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled entry: a name and its patterns."""

    name: str
    patterns: tuple[re.Pattern[str], ...]
    examples: tuple[str, ...]

    def match(self, user_agent: str) -> re.Pattern[str] | None:
        """The first of this entry's patterns found in ``user_agent``, or None."""
        for pattern in self.patterns:
            if pattern.search(user_agent):
                return pattern
        return None


@dataclass(frozen=True, slots=True)
class Decision:
    """What decided a user agent's class and client (``hubcounter classes explain``)."""

    traffic_class: str
    class_pattern: str | None
    client: str
    client_pattern: str | None


class Classifier:
    """Decides (traffic class, client) of user agents, remembering the ones it has seen."""

    def __init__(self, classes: tuple[Rule, ...], clients: tuple[Rule, ...], origin: str):
        self.classes = classes
        self.clients = clients
        self.origin = origin
        self._seen: dict[str | None, tuple[str, str]] = {}

    def classify(self, user_agent: str | None) -> tuple[str, str]:
        """(traffic class, client) of ``user_agent`` (None or empty: other, unknown)."""
        user_agent = user_agent[:AGENT_CHARS] if user_agent else user_agent  # keys stay small
        found = self._seen.get(user_agent)
        if found is None:
            decision = self.explain(user_agent)
            found = (decision.traffic_class, decision.client)
            if len(self._seen) >= _CACHE_MAX:
                self._seen.clear()  # bounded: hostile input cannot grow it forever
            self._seen[user_agent] = found
        return found

    def explain(self, user_agent: str | None) -> Decision:
        """The class and client of ``user_agent`` with the patterns that decided them."""
        text = (user_agent or "")[:AGENT_CHARS]
        klass, class_pattern = _first(self.classes, text, NO_CLASS)
        client, client_pattern = _first(self.clients, text, NO_CLIENT)
        return Decision(klass, class_pattern, client, client_pattern)


def _first(rules: tuple[Rule, ...], text: str, fallback: str) -> tuple[str, str | None]:
    for rule in rules:
        pattern = rule.match(text)
        if pattern is not None:
            return rule.name, pattern.pattern
    return fallback, None


def load_classifier(path: str | Path | None = None) -> Classifier:
    """The shipped rules, or an operator's file that replaces them.

    Raises ConfigError naming the file, the list, the entry and the pattern at fault.
    """
    if path is None:
        text = resources.files("stream.classes").joinpath("data", "classes.yaml").read_text()
        origin = "shipped classes"
    else:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read the classes file {path}: {exc}") from None
        origin = str(path)
    return parse(text, origin)


def parse(text: str, origin: str) -> Classifier:
    """Compile a classes file's text (YAML or JSON); ``origin`` names it in errors."""
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not YAML or JSON: {exc}") from None
    try:
        data = _File.model_validate(raw)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise ConfigError(f"{origin}: {where}: {problem['msg']}") from None
    classes = _compile(data.classes, "classes", origin)
    for rule in classes:
        if rule.name not in TRAFFIC_CLASSES or rule.name == NO_CLASS:
            raise ConfigError(f"{origin}: classes: {rule.name!r} is not one of "
                              f"{', '.join(c for c in TRAFFIC_CLASSES if c != NO_CLASS)}")
    clients = _compile(data.clients, "clients", origin)
    if any(rule.name == NO_CLIENT for rule in clients):
        raise ConfigError(f"{origin}: clients: {NO_CLIENT!r} is what matches no client; it cannot be an entry")
    return Classifier(classes, clients, origin)


def _compile(entries: list[_Entry], section: str, origin: str) -> tuple[Rule, ...]:
    names: set[str] = set()
    rules = []
    for index, entry in enumerate(entries):
        if entry.name in names:
            raise ConfigError(f"{origin}: {section}[{index}] {entry.name!r} appears twice")
        names.add(entry.name)
        compiled = []
        for position, text in enumerate(entry.patterns):
            try:
                pattern = re.compile(text, re.IGNORECASE)
            except re.error as exc:
                raise ConfigError(f"{origin}: {section}[{index}] {entry.name!r} pattern {position} "
                                  f"{text!r}: {exc}") from None
            if pattern.search(""):
                raise ConfigError(f"{origin}: {section}[{index}] {entry.name!r} pattern {position} "
                                  f"{text!r} matches every user agent")
            compiled.append(pattern)
        rules.append(Rule(entry.name, tuple(compiled), tuple(entry.examples)))
    return tuple(rules)


def lint(classifier: Classifier) -> list[str]:
    """Problems of a loaded file: every example an entry lists must be decided as that entry."""
    problems = []
    for section, rules, decide in (("classes", classifier.classes, lambda d: d.traffic_class),
                                   ("clients", classifier.clients, lambda d: d.client)):
        for rule in rules:
            for example in rule.examples:
                got = decide(classifier.explain(example))
                if got != rule.name:
                    problems.append(f"{section} {rule.name!r}: example {example!r} is decided {got!r}")
    return problems
