"""A user's own dataset in a plain folder.

```
root/
  classes.txt        one class name per line, in label order (line 1 is label 0)
  images/<stem>.jpg  RGB images (.jpg, .jpeg, .png, .bmp, .tif, .tiff or .webp)
  labels/<stem>.png  one channel of class indices (8-bit grey or palette), 255 = void
  train.txt ...      one stem per line; every `<split>.txt` other than classes.txt is a split
```

The class names are plain text rather than YAML so that the data layer needs no YAML parser
(the layering rule keeps yaml out of it). Void is always 255 (`IGNORE_INDEX`): remap other void
values when converting labels. Mean and std default to ImageNet's; set `data.mean`/`data.std`
to the dataset's own when known.
"""

from __future__ import annotations

from pathlib import Path

from rmi_cli.config import DataConfig
from rmi_cli.data.base import DatasetInfo, FileDataset, FilePair, check_split, require_pair_files
from rmi_cli.data.io import read_list, resolve_root
from rmi_cli.errors import DataError

CLASSES_FILE = "classes.txt"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def build_folder(cfg: DataConfig, split: str) -> FileDataset:
    """One split of a folder dataset."""
    root = resolve_root(cfg)
    info = folder_info(root)
    check_split(info, split)
    list_path = root / f"{split}.txt"
    images = _images_by_stem(root / "images")
    pairs = []
    for fields in read_list(list_path, what="split"):
        stem = fields[0]
        image = images.get(stem, root / "images" / f"{stem}.jpg")
        pairs.append(FilePair(image, root / "labels" / f"{stem}.png", stem))
    require_pair_files(pairs, listed_in=list_path)
    return FileDataset(info, split, pairs)


def folder_info(root: Path) -> DatasetInfo:
    """Class names from classes.txt; splits from the other *.txt files."""
    classes = root / CLASSES_FILE
    hint = "a folder dataset lists its class names there, one per line, in label order"
    names = [" ".join(fields) for fields in read_list(classes, what="class-name", hint=hint)]
    if not names:
        raise DataError(f"class-name list {classes} is empty: write one class name per line")
    if len(names) > 255:
        raise DataError(f"class-name list {classes} has {len(names)} names; at most 255 fit")
    splits = sorted(path.stem for path in root.glob("*.txt") if path.name != CLASSES_FILE)
    return DatasetInfo(
        name="folder",
        class_names=tuple(names),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        splits=tuple(splits),
    )


def _images_by_stem(folder: Path) -> dict[str, Path]:
    # One directory scan instead of probing each suffix per listed stem.
    if not folder.is_dir():
        raise DataError(f"image folder {folder} not found: a folder dataset keeps images there")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            found.setdefault(path.stem, path)
    return found
