"""The project's named errors.

Every error derives from :class:`HubcounterError`; each also inherits the builtin it
resembles (a bad rule is also a ``ValueError``) so callers outside the project can catch
it the usual way. ``retriable`` tells a retry loop whether waiting can help.
"""

from __future__ import annotations


class HubcounterError(Exception):
    """Root of every error raised on purpose by hubcounter."""

    retriable: bool = False


class ConfigError(HubcounterError, ValueError):
    """A setting or an operator file is unusable."""


class RuleError(HubcounterError, ValueError):
    """A download rule cannot be compiled.

    ``library`` names the library whose rule failed (None for an ad-hoc query) and
    ``position`` is the 0-based character offset in the query text, when known.
    """

    def __init__(self, message: str, *, library: str | None = None, position: int | None = None):
        self.library = library
        self.position = position
        where = []
        if library is not None:
            where.append(f"library {library!r}")
        if position is not None:
            where.append(f"position {position}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class EventError(HubcounterError, ValueError):
    """A file-request event is malformed; ``reason`` is the short code sent to the DLQ."""

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class StoreUnavailable(HubcounterError, ConnectionError):
    """Redis cannot be reached; the batch was not applied and may be retried."""

    retriable = True


class StoreRefused(HubcounterError, RuntimeError):
    """Redis answers but refuses the write (out of memory, cannot persist, no permission).

    Waiting alone will not help: an operator must act. Nothing was applied.
    """


class ServiceMissing(HubcounterError, RuntimeError):
    """An embedded service (broker or Redis) cannot be started or found."""
