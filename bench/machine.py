"""What the figures were measured on: cores, CPU, memory, Python, broker and Redis versions."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from stream.devstack import redis_binary, tansu_binary


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def redis_version() -> str:
    try:
        out = subprocess.run([redis_binary(), "--version"], capture_output=True, text=True, timeout=10).stdout
    except Exception as exc:  # a missing Redis shows in the report, it does not stop it
        return f"unknown ({exc})"
    version = next((part for part in out.split() if part.startswith("v=")), "v=unknown")
    return f"redis-server {version[2:]}"


def broker(kind: str) -> str:
    """The broker of a run as the page names it (``kind``: ``kafka`` or ``tansu``), with its version."""
    if kind == "tansu":
        try:
            binary = Path(tansu_binary()).name  # e.g. tansu-v0.6.0-510f3e2
        except Exception:
            binary = "tansu"
        return f"Tansu ({binary}), memory storage"
    from stream.devstack.kafka import kafka_version

    return f"Apache Kafka {kafka_version()} (one KRaft node)"


def facts(broker_kind: str) -> dict[str, Any]:
    """The machine and software a run on ``broker_kind`` (``kafka`` or ``tansu``) used, and when."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / (1 << 30), 1),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "broker": broker(broker_kind),
        "redis": redis_version(),
    }


def load_average() -> float:
    """The one-minute load average (other jobs on the machine show here)."""
    return round(os.getloadavg()[0], 2)
