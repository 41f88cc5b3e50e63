"""The dataset vocabulary: `DatasetInfo`, `Sample`, and the `SegmentationDataset` bases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from rmi_cli.data.io import check_label, read_image, read_label, require_files
from rmi_cli.errors import DataError


@dataclass(frozen=True)
class DatasetInfo:
    """What the rest of the tool needs to know about a dataset, independent of its split."""

    name: str
    class_names: tuple[str, ...]
    mean: tuple[float, float, float]  # per RGB channel, 0-255
    std: tuple[float, float, float]  # per RGB channel, 0-255
    splits: tuple[str, ...]
    # RGB per class for label maps in figures (the dataset's own colours); None: figures pick
    # a colour-blind-safe palette. `void_colour` paints IGNORE_INDEX pixels.
    palette: tuple[tuple[int, int, int], ...] | None = None
    void_colour: tuple[int, int, int] = (0, 0, 0)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


class Sample(NamedTuple):
    """One decoded image and its label map (void pixels are `IGNORE_INDEX`)."""

    image: torch.Tensor  # (3, H, W) uint8 RGB
    label: torch.Tensor  # (H, W) uint8 class indices, void = 255
    name: str  # the file stem, unique within the split


class SegmentationDataset(Dataset[Sample]):
    """One split of a dataset; subclasses implement `__len__` and `__getitem__`."""

    info: DatasetInfo
    split: str

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Sample:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.info.name!r}, split={self.split!r}, n={len(self)})"


@dataclass(frozen=True)
class FilePair:
    """An image file, its label file, and the sample's name."""

    image: Path
    label: Path
    name: str


class FileDataset(SegmentationDataset):
    """A split stored as image/label file pairs; labels go through an optional lookup table."""

    def __init__(
        self,
        info: DatasetInfo,
        split: str,
        pairs: Sequence[FilePair],
        *,
        label_map: dict[int, int] | None = None,
    ) -> None:
        self.info = info
        self.split = split
        self.pairs = list(pairs)
        self._lut: np.ndarray | None = None
        if label_map:
            # A 256-entry table maps raw values (e.g. CamVid's void 11) in one indexing pass.
            self._lut = np.arange(256, dtype=np.uint8)
            for raw, mapped in label_map.items():
                self._lut[raw] = mapped

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Sample:
        pair = self.pairs[index]
        image = read_image(pair.image)
        label = read_label(pair.label)
        if self._lut is not None:
            label = self._lut[label]
        check_label(
            label,
            num_classes=self.info.num_classes,
            path=pair.label,
            image_hw=(image.shape[1], image.shape[2]),
            image=pair.image,
        )
        return Sample(image, torch.from_numpy(np.ascontiguousarray(label)), pair.name)


def check_split(info: DatasetInfo, split: str) -> None:
    """Unknown split names fail with the list of known ones."""
    if split not in info.splits:
        raise DataError(
            f"dataset {info.name!r} has no split {split!r}; known splits: {', '.join(info.splits)}"
        )


def require_pair_files(pairs: Sequence[FilePair], *, listed_in: Path) -> None:
    """Every listed image and label must exist (checked up front, not mid-training), and a
    split must list something: an empty one would fail every attempt of a job later."""
    if not pairs:
        raise DataError(
            f"split list {listed_in} lists no images; write one image name per line (without "
            f"its suffix) or choose another split"
        )
    require_files(
        [path for pair in pairs for path in (pair.image, pair.label)], listed_in=listed_in
    )
