"""Shared fixtures: paths to the real CamVid copy, temporary databases.

The project's shared folder (the real CamVid copy, the paper's text) is `../shared` beside the
checkout, or $RMI_SHARED; $RMI_TEST_CAMVID points at a CamVid copy elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RMI_SHARED", REPO.parent / "shared"))
CAMVID = Path(os.environ.get("RMI_TEST_CAMVID", SHARED / "data" / "camvid"))


@pytest.fixture(scope="session")
def camvid_root() -> Path:
    """The real CamVid copy beside the checkout; tests that need it skip without it."""
    if not (CAMVID / "train.txt").is_file():
        pytest.skip(f"real CamVid not found at {CAMVID} (set RMI_TEST_CAMVID to its folder)")
    return CAMVID
