"""Model tests never touch the network: every test gets an empty torch cache, and torch hub's
download function fails loudly if anything tries to fetch weights."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch


class DownloadAttempted(AssertionError):
    """Raised by the patched downloader; tests that expect a download attempt replace it."""


def _refuse_download(url: str, dst: str, *args: object, **kwargs: object) -> None:
    raise DownloadAttempted(f"a test tried to download {url}")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    torch_home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _refuse_download)
    return torch_home


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make any download fail as it does without network; returns the URLs that were tried."""
    tried: list[str] = []

    def unreachable(url: str, dst: str, *args: object, **kwargs: object) -> None:
        tried.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", unreachable)
    return tried
