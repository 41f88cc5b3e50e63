"""PASCAL VOC 2012 segmentation in the VOCdevkit layout, plus SBD's `trainaug`.

`data.root` may be the `VOC2012` folder itself, `VOCdevkit`, or the folder above `VOCdevkit`.
Labels are the palette PNGs of `SegmentationClass`, read as palette indices (the colours are only
a display of them); 255 marks object boundaries and "difficult" pixels and is ignored.

`trainaug` (10,582 images in the usual release) needs `data.sbd_root`: a folder of SBD labels
converted to index PNGs (e.g. `SegmentationClassAug/<stem>.png`), and a list `train_aug.txt`
inside that folder or beside it (in its parent). The list holds one image per line, either a
bare stem or an "image label" pair such as `/JPEGImages/X.jpg /SegmentationClassAug/X.png`;
only the stem is used. Images always come from the VOC `JPEGImages`.
"""

from __future__ import annotations

from pathlib import Path

from rmi_cli.config import DataConfig, expand_path
from rmi_cli.data.base import DatasetInfo, FileDataset, FilePair, check_split, require_pair_files
from rmi_cli.data.io import read_list, resolve_root
from rmi_cli.errors import DataError

CLASS_NAMES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
TRAINAUG_LIST = "train_aug.txt"


def voc_colour(index: int) -> tuple[int, int, int]:
    """The colour of class `index` in VOC's palette PNGs (bits of the index spread over the
    channels' high bits: 1 -> (128, 0, 0), 2 -> (0, 128, 0), ...)."""
    rgb = [0, 0, 0]
    for shift in range(8):
        for channel in range(3):
            rgb[channel] |= ((index >> (3 * shift + channel)) & 1) << (7 - shift)
    return (rgb[0], rgb[1], rgb[2])


INFO = DatasetInfo(
    name="voc2012",
    class_names=CLASS_NAMES,
    mean=(116.0, 113.0, 104.0),
    std=(69.58, 68.68, 72.67),
    splits=("train", "val", "trainval", "trainaug"),
    palette=tuple(voc_colour(index) for index in range(len(CLASS_NAMES))),
    void_colour=(224, 224, 192),  # the colour of VOC's void outlines
)


def build_voc(cfg: DataConfig, split: str) -> FileDataset:
    """One split of VOC 2012 (`trainaug` when `data.sbd_root` is set)."""
    check_split(INFO, split)
    voc = find_voc_folder(resolve_root(cfg))
    if split == "trainaug":
        labels, list_path = _sbd_folder(cfg)
        stems = [Path(fields[0]).stem for fields in read_list(list_path, what="SBD trainaug")]
    else:
        labels = voc / "SegmentationClass"
        list_path = voc / "ImageSets" / "Segmentation" / f"{split}.txt"
        stems = [fields[0] for fields in read_list(list_path, what="VOC split")]
    pairs = [
        FilePair(voc / "JPEGImages" / f"{stem}.jpg", labels / f"{stem}.png", stem) for stem in stems
    ]
    require_pair_files(pairs, listed_in=list_path)
    return FileDataset(INFO, split, pairs)


def find_voc_folder(root: Path) -> Path:
    """The folder holding JPEGImages: root, root/VOC2012 or root/VOCdevkit/VOC2012."""
    candidates = (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012")
    for folder in candidates:
        if (folder / "JPEGImages").is_dir():
            return folder
    raise DataError(
        f"no JPEGImages folder in {root}, {candidates[1]} or {candidates[2]}: point data.root "
        f"at VOCdevkit/VOC2012 or VOCdevkit"
    )


def _sbd_folder(cfg: DataConfig) -> tuple[Path, Path]:
    if not cfg.sbd_root:
        raise DataError(
            "split 'trainaug' needs data.sbd_root: the folder of SBD labels converted to PNG "
            "(e.g. SegmentationClassAug) with train_aug.txt in it or beside it"
        )
    labels = Path(expand_path(cfg.sbd_root))
    if not labels.is_dir():
        raise DataError(
            f"SBD label folder {labels} does not exist (data.sbd_root is {cfg.sbd_root!r}; "
            f"${{VAR}} expands from the environment): fix the path or set the variable"
        )
    for list_path in (labels / TRAINAUG_LIST, labels.parent / TRAINAUG_LIST):
        if list_path.is_file():
            return labels, list_path
    raise DataError(
        f"SBD trainaug list {TRAINAUG_LIST} not found in {labels} or {labels.parent}: "
        f"put the list of trainaug stems there"
    )
