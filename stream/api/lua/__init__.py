"""The read API's Lua scripts: the rate limiter's token bucket and the token store's writes."""

from __future__ import annotations

from importlib import resources


def script(name: str) -> str:
    """The text of one of these scripts (``bucket.lua``, ``token_create.lua``, ``token_revoke.lua``)."""
    return resources.files(__name__).joinpath(name).read_text()
