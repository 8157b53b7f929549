"""What a counted download says besides its repo and day: traffic class, client, country.

Pure: the classes come from the user agent by the rules of :mod:`stream.classes`, the
country from the event's ISO 3166-1 alpha-2 code, each as its breakdown field
(:mod:`stream.fields`). The file and the downloader are the event's own fields; counting
(:mod:`stream.counting`) puts them together.
"""

from __future__ import annotations

from typing import Final

import pycountry

from stream.classes import AGENT_CHARS, Classifier
from stream.fields import CLASS, CLIENT, COUNTRY

UNKNOWN_COUNTRY: Final = "unknown"
_SEEN_MAX = 200_000
COUNTRIES: Final = frozenset(country.alpha_2 for country in pycountry.countries)


class Facets:
    """Decides the breakdown fields of a download's class, client and country; cheap on
    repeated inputs."""

    def __init__(self, classifier: Classifier):
        self.classify = classifier.classify
        # every spelling of a code, in any case, to the field of the code counted
        self._countries = {a + b: COUNTRY + a.upper() + b.upper() for a, b in
                           {(x, y) for code in COUNTRIES for x in (code[0], code[0].lower())
                            for y in (code[1], code[1].lower())}}
        # (user agent, country) as sent -> the facets: one lookup per download on a hit
        self._seen: dict[tuple[str | None, str | None], tuple[str, str, str]] = {}

    def of(self, user_agent: str | None, country: str | None) -> tuple[str, str, str]:
        """The (traffic class, client, country) fields of one download, e.g.
        ``("c:ci", "k:transformers", "g:DE")``."""
        found = self._seen.get((user_agent, country))
        if found is None:
            # Only the start of a user agent decides (see stream.classes): a hostile one many
            # KiB long is remembered by its start, so the memory this takes stays bounded.
            sent = (user_agent[:AGENT_CHARS] if user_agent else user_agent, country)
            found = self._seen.get(sent)
            if found is None:
                traffic_class, client = self.classify(sent[0])
                found = (CLASS + traffic_class, CLIENT + client,
                         self._countries.get(country, COUNTRY + UNKNOWN_COUNTRY))  # type: ignore[arg-type]
                if len(self._seen) >= _SEEN_MAX:
                    self._seen.clear()  # bounded: hostile input cannot grow it forever
                self._seen[sent] = found
        return found
