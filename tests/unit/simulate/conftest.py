"""Shared simulations: building a catalogue takes a moment, so build each once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stream.simulate import Simulation

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def small_sim() -> Simulation:
    """A small hub (2,000 models) with bad records, for format and behaviour tests."""
    return Simulation(seed=7, repos=2_000, now=NOW, bad_fraction=0.05)


@pytest.fixture(scope="session")
def default_sim() -> Simulation:
    """The default-size hub (30,000 models, 3,000 datasets, 2,000 spaces)."""
    return Simulation(seed=11, now=NOW)
