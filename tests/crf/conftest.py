"""CRF test inputs: a synthetic scene and a real CamVid image, with noisy probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rmi_cli.crf import probabilities_from_labels

COLOURS = np.array([[200, 40, 40], [40, 180, 60], [50, 60, 210], [230, 220, 90]], dtype=np.uint8)


def scene(height: int = 48, width: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Four flat-coloured regions (two bands, a box, a disc): image (H, W, 3), label (H, W)."""
    rows, cols = np.mgrid[:height, :width]
    label = np.where(rows < height // 2, 0, 1).astype(np.uint8)
    label[height // 4 : 3 * height // 4, width // 8 : width // 3] = 2
    disc = (rows - height // 2) ** 2 + (cols - 3 * width // 4) ** 2 < (height // 4) ** 2
    label[disc] = 3
    return COLOURS[label], label


@pytest.fixture
def noisy_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """probs (C, H, W) float32 whose argmax is often wrong, image (H, W, 3), label (H, W)."""
    image, label = scene()
    probs = probabilities_from_labels(label, len(COLOURS), margin=1.0, noise=1.5, seed=0)
    return probs, image, label


@pytest.fixture(scope="session")
def camvid_image(camvid_root: Path) -> tuple[np.ndarray, np.ndarray]:
    """A CamVid test image (H, W, 3) uint8 and its label (H, W), read directly with Pillow."""
    stem = "0001TP_008550"
    with Image.open(camvid_root / "test" / f"{stem}.jpg") as image:
        rgb = np.array(image.convert("RGB"))
    with Image.open(camvid_root / "testannot" / f"{stem}.png") as label:
        labels = np.array(label)
    return rgb, labels
