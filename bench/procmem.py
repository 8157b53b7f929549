"""A process's memory as the operating system sees it: resident now and at its peak."""

from __future__ import annotations

from pathlib import Path

import psutil


def rss_bytes(pid: int) -> int:
    """Resident set size now."""
    return int(psutil.Process(pid).memory_info().rss)


def peak_rss_bytes(pid: int) -> int | None:
    """The high-water mark of the resident set (``VmHWM``), which psutil does not expose."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # reported in kB
    except OSError:
        return None
    return None


def mib(n: float | None) -> float | None:
    return None if n is None else n / (1 << 20)
