"""Reading dataset files: the root folder, split lists, images and label maps.

Every failure is a `DataError` whose one-line message names the file, what was expected, what
was found and what to do, because these are the errors users meet first with their own data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from rmi_cli.config import DataConfig
from rmi_cli.constants import IGNORE_INDEX
from rmi_cli.errors import DataError

# Pillow's failures on truncated, corrupt or non-image files come as any of these.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    UnidentifiedImageError,
    Image.DecompressionBombError,
)


def resolve_root(cfg: DataConfig) -> Path:
    """The dataset's root folder, with ${VAR} and ~ expanded; a `DataError` when it is absent."""
    if not cfg.root:
        raise DataError(f"data.root is required for dataset {cfg.name!r}: set it to the folder")
    root = Path(cfg.resolved_root() or "")
    if not root.is_dir():
        raise DataError(
            f"data root {root} does not exist (data.root is {cfg.root!r}; ${{VAR}} in data.root "
            f"expands from the environment and ~ to your home): fix the path or set the variable"
        )
    return root


def read_list(
    path: Path, *, what: str, hint: str = "check data.root and the split name"
) -> list[list[str]]:
    """The non-blank, non-comment lines of a list file, split on whitespace."""
    if not path.is_file():
        raise DataError(f"{what} list {path} not found: {hint}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{what} list {path} cannot be read: {error}") from error
    lines = [line.split() for line in text.splitlines()]
    return [fields for fields in lines if fields and not fields[0].startswith("#")]


def require_files(paths: Sequence[Path], *, listed_in: Path) -> None:
    """Fail on the first path that does not exist, naming the list that names it."""
    for path in paths:
        if not path.is_file():
            raise DataError(f"{path} (listed in {listed_in}) does not exist: fix the list")


def read_image(path: Path) -> torch.Tensor:
    """An RGB image as uint8 (3, H, W); grey or palette images are converted to RGB, 16-bit grey
    is scaled to 8 bits."""
    try:
        with Image.open(path) as image:
            pixels = _rgb_pixels(image, path)
    except FileNotFoundError as error:
        raise DataError(f"image {path} does not exist") from error
    except _DECODE_ERRORS as error:
        raise DataError(f"image {path} cannot be decoded ({error}): replace the file") from error
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()


def _rgb_pixels(image: Image.Image, path: Path) -> np.ndarray:
    """(H, W, 3) uint8. Pillow's convert("RGB") clips 16-bit grey to 255 (a white image that
    trains without a word), so 16-bit values are scaled to 8 bits here (65535 -> 255)."""
    if image.mode.startswith("I;16"):
        wide = np.asarray(image, dtype=np.uint32)
        grey = ((wide * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode in ("I", "F"):
        kind = "32-bit integer" if image.mode == "I" else "floating-point"
        raise DataError(
            f"image {path} holds {kind} pixels (mode {image.mode}); rmi reads 8-bit or 16-bit "
            f"images: convert it to an 8-bit PNG or JPEG"
        )
    return np.array(image.convert("RGB"))


def read_label(path: Path) -> np.ndarray:
    """A label map of class indices as uint8 (H, W): the palette index for palette PNGs."""
    try:
        with Image.open(path) as image:
            mode = image.mode
            pixels = np.array(image) if mode in ("P", "L", "1", "I", "I;16") else None
    except FileNotFoundError as error:
        raise DataError(f"label {path} does not exist") from error
    except _DECODE_ERRORS as error:
        raise DataError(f"label {path} cannot be decoded ({error}): replace the file") from error
    if pixels is None:
        raise DataError(
            f"label {path} has image mode {mode}; expected one channel of class indices "
            f"(an 8-bit grey 'L' or palette 'P' PNG): convert the colours to indices"
        )
    if pixels.dtype != np.uint8:
        if pixels.size and (pixels.min() < 0 or pixels.max() > IGNORE_INDEX):
            raise DataError(f"label {path} holds values outside 0..255 ({pixels.max()} found)")
        pixels = pixels.astype(np.uint8)
    return pixels


def check_label(
    label: np.ndarray, *, num_classes: int, path: Path, image_hw: tuple[int, int], image: Path
) -> None:
    """Sizes must agree, and every value must be a class index in [0, C) or the void 255."""
    if label.shape != image_hw:
        raise DataError(
            f"label {path} is {label.shape[1]}x{label.shape[0]} (WxH) but image {image} is "
            f"{image_hw[1]}x{image_hw[0]}: they must be the same size"
        )
    counts = np.bincount(label.ravel(), minlength=256)
    counts[IGNORE_INDEX] = 0
    bad = np.flatnonzero(counts[num_classes:]) + num_classes
    if bad.size:
        raise DataError(
            f"label {path} holds values {bad.tolist()} outside [0, {num_classes}) that are not "
            f"the void value {IGNORE_INDEX}: fix the label or the class list"
        )
