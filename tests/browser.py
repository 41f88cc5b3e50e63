"""Looking at a page as a person would: headless Chromium renders it to a PNG and dumps the DOM.

CI installs Chromium from the Debian packages (`.ci/run`) and sets RMI_REQUIRE_CHROMIUM=1, so
the tests that need it fail there instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--allow-file-access-from-files",
)  # fmt: skip


def chromium() -> str:
    """The browser's path, or skip (fail where RMI_REQUIRE_CHROMIUM=1) saying why."""
    found = os.environ.get("RMI_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
        None,
    )
    if found:
        return found
    reason = "no chromium on PATH (apt-get install chromium; .ci/run installs it)"
    if os.environ.get("RMI_REQUIRE_CHROMIUM") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _run(page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="rmi-chromium-") as profile:
        return subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )


def screenshot(page: Path, png: Path, *, width: int = 1280, height: int = 2000) -> np.ndarray:
    """Render `page` headless into `png`; returns its RGB pixels."""
    done = _run(page, f"--screenshot={png}", f"--window-size={width},{height}")
    assert png.is_file(), f"chromium wrote no screenshot:\n{done.stderr[-2000:]}"
    return np.asarray(Image.open(png).convert("RGB"))


def dump_dom(page: Path) -> str:
    """The DOM after the page loaded, as chromium serialises it."""
    done = _run(page, "--dump-dom")
    assert "<html" in done.stdout, f"chromium dumped no DOM:\n{done.stderr[-2000:]}"
    return done.stdout
