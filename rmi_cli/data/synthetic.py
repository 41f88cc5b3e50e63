"""The built-in `synthetic` dataset: procedural street scenes, no files (see `scenes.py`).

Image `i` of split `s` is a pure function of (`data.synthetic.seed`, `s`, `i`) and the configured
size, so every process (DataLoader workers included) renders the same pixels. `trainval` is
train followed by val, like CamVid's.
"""

from __future__ import annotations

import numpy as np
import torch

from rmi_cli.config import DataConfig, SyntheticConfig
from rmi_cli.data.base import DatasetInfo, Sample, SegmentationDataset, check_split
from rmi_cli.data.scenes import CLASS_NAMES, render_scene

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
SPLIT_PARTS = {
    "train": ("train",),
    "val": ("val",),
    "test": ("test",),
    "trainval": ("train", "val"),
}
# Rendering is cheap, but epochs revisit every image; keep up to this many bytes per process.
CACHE_BYTES = 256 * 2**20

# CamVid's colours for the classes the scenes share with it (wires take the fence's)
PALETTE = (
    (128, 128, 128), (128, 0, 0), (128, 64, 128), (60, 40, 222), (128, 128, 0),
    (192, 192, 128), (64, 64, 128), (192, 128, 128), (64, 0, 128), (64, 64, 0),
)  # fmt: skip

INFO = DatasetInfo(
    name="synthetic",
    class_names=CLASS_NAMES,
    # Measured once over the default train split (seed 0, 64 images of 96x128): 125.9, 132.7,
    # 132.6 / 43.3, 46.6, 59.7 (a test checks them; 256 images of 192x256 with seed 3 give 124.8,
    # 132.4, 133.6 / 44.6, 47.3, 59.9). The mean is rounded to integers so that the padding
    # colour (the rounded mean, see transforms.py) normalises to exactly zero.
    mean=(126.0, 133.0, 133.0),
    std=(43.3, 46.6, 59.7),
    splits=tuple(SPLIT_PARTS),
    palette=PALETTE,
)


class SyntheticDataset(SegmentationDataset):
    """One split of procedurally generated scenes, rendered on first access and cached."""

    def __init__(self, cfg: SyntheticConfig, split: str) -> None:
        check_split(INFO, split)
        self.info = INFO
        self.split = split
        self.cfg = cfg
        counts = {"train": cfg.train_images, "val": cfg.val_images, "test": cfg.test_images}
        self.parts = [(part, counts[part]) for part in SPLIT_PARTS[split]]
        self._cache: dict[int, Sample] = {}

    def __len__(self) -> int:
        return sum(count for _, count in self.parts)

    def __getitem__(self, index: int) -> Sample:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {self!r}")
        index %= len(self)
        if index in self._cache:
            return self._cache[index]
        part, local = self._locate(index)
        sample = render_sample(self.cfg, part, local)
        per_sample = sample.image.numel() + sample.label.numel()
        if (len(self._cache) + 1) * per_sample <= CACHE_BYTES:
            self._cache[index] = sample
        return sample

    def _locate(self, index: int) -> tuple[str, int]:
        for part, count in self.parts:
            if index < count:
                return part, index
            index -= count
        raise AssertionError("unreachable: index was range-checked")


def render_sample(cfg: SyntheticConfig, part: str, local: int) -> Sample:
    """Scene `local` of split `part` (train, val or test) as a `Sample`."""
    entropy = [cfg.seed % 2**64, SPLIT_CODES[part], local]
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    image, label = render_scene(cfg.height, cfg.width, rng)
    return Sample(
        image=torch.from_numpy(image).permute(2, 0, 1).contiguous(),
        label=torch.from_numpy(label),
        name=f"{part}_{local:05d}",
    )


def build_synthetic(cfg: DataConfig, split: str) -> SyntheticDataset:
    """One split of the synthetic dataset (its `data.root` is ignored)."""
    return SyntheticDataset(cfg.synthetic, split)
