"""The worker process's own setup."""

from __future__ import annotations

import platform

import pytest

from stream.app import return_large_buffers

pytestmark = pytest.mark.unit


def test_large_buffers_go_back_to_the_system_where_the_allocator_allows_it() -> None:
    # The effect on the worker's RSS is measured by `python -m bench all --only memory`.
    assert return_large_buffers() is (platform.libc_ver()[0] == "glibc")
