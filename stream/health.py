"""Whether the worker is alive and ready, as ``/healthz`` and ``/readyz`` report it.

Liveness answers "would a restart help?": it fails when records wait and no batch has
been applied for ``stall_after_s``, unless the worker is riding out a declared outage
(Redis or Kafka away: a restart would not bring them back, and every worker restarting
at once would make the recovery slower). A problem that needs an operator (a dead letter
the topic refuses, a missing permission) is no outage: the worker keeps trying, and
liveness fails once it has stalled for long enough.

Readiness answers "is it counting?": started, not stopping, no outage, nothing blocked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Health:
    """The worker's health state; the worker updates it, the web pages read it."""

    stall_after_s: float
    started: bool = False
    stopping: bool = False
    outage: str | None = None  # a retriable problem being waited out
    blocked: str | None = None  # a problem only an operator can fix
    waiting: int = 0  # records known to wait to be applied
    last_progress: float = field(default_factory=time.monotonic)

    def progressed(self) -> None:
        """A batch was applied, or there was nothing to apply."""
        self.last_progress = time.monotonic()

    def trouble(self, what: str, needs_operator: bool) -> None:
        """An action failed and will be retried; ``needs_operator`` tells which kind of failure."""
        if needs_operator:
            self.blocked, self.outage = what, None
        else:
            self.outage, self.blocked = what, None

    def recovered(self) -> None:
        """The action that failed went through."""
        self.outage = self.blocked = None

    def stalled_for(self) -> float:
        """Seconds without progress while records wait (0 when nothing waits)."""
        return time.monotonic() - self.last_progress if self.waiting > 0 else 0.0

    def live(self) -> tuple[bool, dict[str, Any]]:
        """Liveness and the facts behind it."""
        stalled = self.stalled_for()
        ok = self.outage is not None or stalled <= self.stall_after_s
        return ok, {"ok": ok, "waiting": self.waiting, "stalled_s": round(stalled, 1),
                    "outage": self.outage, "blocked": self.blocked}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """Readiness and the facts behind it."""
        ok = self.started and not self.stopping and self.outage is None and self.blocked is None
        return ok, {"ready": ok, "outage": self.outage, "blocked": self.blocked}
