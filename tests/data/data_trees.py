"""Helpers that write tiny image/label files for the data tests (a few pixels each)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from rmi_cli.config import DataConfig

# The VOC colour map (the first entries): palette PNGs store indices, these are only colours.
VOC_COLOURS = [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128)]


def voc_palette() -> list[int]:
    palette = [0] * 768
    for index, colour in enumerate(VOC_COLOURS):
        palette[3 * index : 3 * index + 3] = colour
    palette[3 * 255 : 3 * 256] = (224, 224, 192)
    return palette


def write_image(path: Path, height: int = 12, width: int = 16, seed: int = 0) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def write_label(path: Path, label: np.ndarray, *, palette: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(label.astype(np.uint8), mode="P" if palette else "L")
    if palette:
        image.putpalette(voc_palette())
    image.save(path)


def stripes(height: int = 12, width: int = 16, classes: int = 3) -> np.ndarray:
    """Vertical stripes of classes 0..classes-1 with one void row."""
    label = np.tile((np.arange(width) * classes // width).astype(np.uint8), (height, 1))
    label[0] = 255
    return label


def folder_cfg(root: Path, **overrides: object) -> DataConfig:
    return DataConfig(name="folder", root=str(root), **overrides)
