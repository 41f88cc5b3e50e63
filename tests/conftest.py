"""Shared fixtures: paths to the real CamVid copy, temporary databases."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CAMVID = Path(os.environ.get("RMI_TEST_CAMVID", REPO.parent / "shared" / "data" / "camvid"))


@pytest.fixture(scope="session")
def camvid_root() -> Path:
    """The real CamVid copy beside the checkout; tests that need it skip without it."""
    if not (CAMVID / "train.txt").is_file():
        pytest.skip(f"real CamVid not found at {CAMVID} (set RMI_TEST_CAMVID to its folder)")
    return CAMVID
