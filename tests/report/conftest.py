"""Fixtures: the hand-built rows of `report_rows`, fresh for every test."""

from __future__ import annotations

from typing import Any

import pytest
import report_rows


@pytest.fixture
def voc_rows() -> list[dict[str, Any]]:
    return report_rows.voc_rows()


@pytest.fixture
def ablation_rows() -> list[dict[str, Any]]:
    return report_rows.ablation_rows()


@pytest.fixture
def camvid_rows() -> list[dict[str, Any]]:
    return report_rows.camvid_rows()
