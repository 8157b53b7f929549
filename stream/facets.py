"""What a counted download says besides its repo and day: traffic class, client, country.

Pure: the classes come from the user agent by the rules of :mod:`stream.classes`, the
country from the event's ISO 3166-1 alpha-2 code. The file and the downloader are the
event's own fields; counting (:mod:`stream.counting`) puts them together.
"""

from __future__ import annotations

from typing import Final

import pycountry

from stream.classes import Classifier

UNKNOWN_COUNTRY: Final = "unknown"
_SEEN_MAX = 200_000
COUNTRIES: Final = frozenset(country.alpha_2 for country in pycountry.countries)


class Facets:
    """Decides the (class, client, country) of a download; cheap on repeated inputs."""

    def __init__(self, classifier: Classifier):
        self.classify = classifier.classify
        # every spelling of a code, in any case, to the code counted
        self._countries = {a + b: a.upper() + b.upper() for a, b in
                           {(x, y) for code in COUNTRIES for x in (code[0], code[0].lower())
                            for y in (code[1], code[1].lower())}}
        # (user agent, country) as sent -> the facets: one lookup per download on a hit
        self._seen: dict[tuple[str | None, str | None], tuple[str, str, str]] = {}

    def of(self, user_agent: str | None, country: str | None) -> tuple[str, str, str]:
        """(traffic class, client, country) of one download."""
        sent = (user_agent, country)
        found = self._seen.get(sent)
        if found is None:
            traffic_class, client = self.classify(user_agent)
            found = (traffic_class, client, self._countries.get(country, UNKNOWN_COUNTRY))  # type: ignore[arg-type]
            if len(self._seen) >= _SEEN_MAX:
                self._seen.clear()  # bounded: hostile input cannot grow it forever
            self._seen[sent] = found
        return found
