"""A user's own dataset in a plain folder.

```
root/
  classes.yaml       the class names in label order: a YAML list (`[sky, road, car]`), or
                     `names:` with such a list, or a mapping {0: sky, 1: road, ...}
  (or classes.txt)   one class name per line, in label order (line 1 is label 0)
  images/<stem>.jpg  RGB images (.jpg, .jpeg, .png, .bmp, .tif, .tiff or .webp)
  labels/<stem>.png  one channel of class indices (8-bit grey or palette), 255 = void
  train.txt ...      one stem per line; every `<split>.txt` other than classes.txt is a split
```

Void is always 255 (`IGNORE_INDEX`): remap other void values when converting labels. Mean and
std default to ImageNet's; set `data.mean`/`data.std` to the dataset's own when known.
"""

from __future__ import annotations

from pathlib import Path

from rmi_cli.config import DataConfig
from rmi_cli.data.base import DatasetInfo, FileDataset, FilePair, check_split, require_pair_files
from rmi_cli.data.io import read_list, resolve_root
from rmi_cli.errors import DataError
from rmi_cli.yaml_limits import check_yaml_limits

CLASSES_FILE = "classes.txt"
CLASSES_YAML = ("classes.yaml", "classes.yml")
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
        image = images.get(stem) or _image_in_subfolder(root / "images", stem)
        pairs.append(FilePair(image, root / "labels" / f"{stem}.png", stem))
    require_pair_files(pairs, listed_in=list_path)
    return FileDataset(info, split, pairs)


def folder_info(root: Path) -> DatasetInfo:
    """Class names from classes.yaml or classes.txt; splits from the other *.txt files."""
    written = [root / name for name in CLASSES_YAML if (root / name).is_file()]
    if written and (root / CLASSES_FILE).is_file():
        raise DataError(
            f"{root} has both {written[0].name} and {CLASSES_FILE}: keep one list of class names"
        )
    classes = written[0] if written else root / CLASSES_FILE
    names = _yaml_names(classes) if written else _text_names(classes)
    _check_names(names, classes)
    splits = sorted(path.stem for path in root.glob("*.txt") if path.name != CLASSES_FILE)
    return DatasetInfo(
        name="folder",
        class_names=tuple(names),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        splits=tuple(splits),
    )


def _text_names(classes: Path) -> list[str]:
    hint = (
        "a folder dataset lists its class names there, one per line, in label order (or in "
        "classes.yaml)"
    )
    return [" ".join(fields) for fields in read_list(classes, what="class-name", hint=hint)]


def _yaml_names(classes: Path) -> list[str]:
    import yaml  # here only: the rest of the data layer reads no YAML

    expected = "expected a list of class names in label order, `names: [...]`, or {0: name, ...}"
    try:
        text = classes.read_text(encoding="utf-8")
        check_yaml_limits(text, str(classes), error=DataError, what="the class-name list")
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"class-name list {classes} cannot be read ({reason}); {expected}"
        ) from None
    if isinstance(data, dict) and set(data) == {"names"}:
        data = data["names"]
    if isinstance(data, dict) and all(isinstance(key, int) for key in data):
        if sorted(data) != list(range(len(data))):
            raise DataError(
                f"class-name list {classes}: the labels {sorted(data)} are not 0..{len(data) - 1}"
                f"; number the classes from 0 without gaps"
            )
        data = [data[index] for index in range(len(data))]
    if data is None:
        data = []
    if not isinstance(data, list) or not all(isinstance(n, str | int) for n in data):
        raise DataError(f"class-name list {classes}: {expected}; found {type(data).__name__}")
    return [str(name).strip() for name in data]


def _check_names(names: list[str], classes: Path) -> None:
    """Names are the columns of the per-class tables, joined by name: one empty or repeated
    name would merge two classes' IoUs into one column."""
    if not names:
        raise DataError(f"class-name list {classes} is empty: write one class name per line")
    if len(names) > 255:
        raise DataError(f"class-name list {classes} has {len(names)} names; at most 255 fit")
    if "" in names:
        raise DataError(
            f"class-name list {classes}: class {names.index('')} has an empty name; name every "
            f"class (the tables label their columns with these names)"
        )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        labels = "; ".join(
            f"{name!r} is labels {', '.join(str(i) for i, n in enumerate(names) if n == name)}"
            for name in duplicates
        )
        raise DataError(
            f"class-name list {classes} names a class twice ({labels}); give every label its "
            f"own name (the per-class tables would merge them into one column)"
        )


def _image_in_subfolder(folder: Path, stem: str) -> Path:
    """The image of a stem such as `city/0001`, which the scan of the top folder does not see;
    the .jpg path (for the "does not exist" message) when none is there."""
    for suffix in IMAGE_SUFFIXES:
        for spelling in (suffix, suffix.upper()):
            if (path := folder / f"{stem}{spelling}").is_file():
                return path
    return folder / f"{stem}.jpg"


def _images_by_stem(folder: Path) -> dict[str, Path]:
    # One directory scan instead of probing each suffix per listed stem.
    if not folder.is_dir():
        raise DataError(f"image folder {folder} not found: a folder dataset keeps images there")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            found.setdefault(path.stem, path)
    return found
