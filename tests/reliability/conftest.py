"""Reliability tests: no `rmi` process a test started outlives it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from reliability_kit import kill_leftovers


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    yield
    kill_leftovers()
