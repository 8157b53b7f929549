"""The field names of a repo-day's breakdown hash, in one place.

Counting (:mod:`stream.counting`) tallies each download under these names as it judges
it, so the store writes the tally as it is and the recount adds its differences as they
are (an uncounted request's path alone: see :func:`uncounted_fields`); the store reads and
folds the same names. A breakdown field is a dimension's prefix
and a value; a dimension's prefix alone holds what folding a closed day to its top values
summed up ("other"). No value is empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

CLASS: Final = "c:"
CLIENT: Final = "k:"
COUNTRY: Final = "g:"
FILE: Final = "f:"
DIMENSION_PREFIXES: Final = {"class": CLASS, "client": CLIENT, "country": COUNTRY, "file": FILE}
UNCOUNTED_PATH: Final = "p:"  # a model candidate that did not count, by its path
UNCOUNTED_LIBRARY: Final = "l"  # the library that judged the model's uncounted requests


def uncounted_fields(paths: Mapping[str, int]) -> dict[str, int]:
    """A model-day's uncounted requests by path (as counting tallies them) in field names."""
    return {UNCOUNTED_PATH + path: n for path, n in paths.items()}
