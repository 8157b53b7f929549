"""Repo names as the Hub allows them: the one rule the worker, the API and the CLI apply.

An org (or user) and a repo name are each 1 to 96 characters of ASCII letters, digits,
``-``, ``_`` and ``.``, neither starting nor ending with ``-`` or ``.``, with no ``--``
or ``..`` anywhere. A repo is ``org/name``, or a bare legacy ``name`` (``gpt2``). The
worker counts no repo whose name breaks this rule (it dead-letters the event), so every
counted repo is one the API can look up.
"""

from __future__ import annotations

import re
from typing import Final

MAX_NAME_LENGTH: Final = 96
_PART: Final = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?")
RULE: Final = (f"letters, digits, '-', '_' and '.', at most {MAX_NAME_LENGTH} characters, "
               "not starting or ending with '-' or '.', without '--' or '..'")


def valid_part(part: str) -> bool:
    """Whether ``part`` is a valid org name or repo name (one side of the ``/``)."""
    return _PART.fullmatch(part) is not None and "--" not in part and ".." not in part


def valid_repo(repo: str) -> bool:
    """Whether ``repo`` is ``org/name`` or a bare ``name``, each part valid."""
    org, slash, name = repo.partition("/")
    if not slash:
        return valid_part(repo)
    return valid_part(org) and valid_part(name)
