"""Fixtures of the API tests (the helpers they use are in ``support``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI

from tests.integration.api.support import ApiClient


@pytest.fixture(scope="module")
def api_client_factory() -> Iterator[Callable[[FastAPI], ApiClient]]:
    """Makes in-process clients and closes them when the module is done."""
    made: list[ApiClient] = []

    def make(app: FastAPI) -> ApiClient:
        made.append(ApiClient(app))
        return made[-1]

    yield make
    for client in made:
        client.close()
