"""Predictions on chosen images, for figures: the images and labels of a split by position, and
a checkpoint's label maps for them (the evaluation's protocol: whole image, single scale, no
flip, argmax of the logits; nothing timed, nothing scored).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rmi_cli.config import DataConfig, RunConfig
from rmi_cli.data import DatasetInfo, build_dataset
from rmi_cli.data.transforms import normalize
from rmi_cli.engine.evaluate import load_eval_model
from rmi_cli.engine.runtime import numerics, resolve_device, to_input
from rmi_cli.engine.timing import autocast, resolve_precision
from rmi_cli.errors import DataError


@dataclass(frozen=True)
class SplitImage:
    """One image of a split as figures show it."""

    name: str
    image: np.ndarray  # (H, W, 3) uint8 RGB
    label: np.ndarray  # (H, W) uint8, void = 255


def split_images(
    data: DataConfig, split: str, positions: Sequence[tuple[int, str]]
) -> tuple[DatasetInfo, list[SplitImage]]:
    """The dataset's info and the images at `positions` ((index in the split, expected name)
    pairs, as an evaluation stored them; an empty name is not checked); a name that is not
    where the evaluation saw it is a `DataError` (the dataset changed since)."""
    dataset = build_dataset(data, split)
    images = []
    for index, name in positions:
        sample = dataset[index] if index < len(dataset) else None
        if sample is None or (name and sample.name != name):
            found = "nothing" if sample is None else repr(sample.name)
            raise DataError(
                f"split {split!r} of dataset {dataset.info.name!r} has {found} at position "
                f"{index}, where the stored evaluation scored {name!r}: the dataset changed "
                f"since; evaluate the runs again (rmi eval)"
            )
        image = np.ascontiguousarray(sample.image.permute(1, 2, 0).numpy())
        images.append(SplitImage(name, image, np.asarray(sample.label)))
    return dataset.info, images


def predict_images(
    config: RunConfig, *, checkpoint: Path, images: Sequence[SplitImage], info: DatasetInfo
) -> list[np.ndarray]:
    """(H, W) uint8 label maps of `checkpoint` for `images`, on the run's configured device,
    normalised as `iter_eval` does (the run's statistics, else the dataset's)."""
    device = resolve_device(config.train.device)
    precision = resolve_precision(config.train.precision, device)
    mean, std = config.data.mean or info.mean, config.data.std or info.std
    predictions = []
    with numerics(deterministic=config.train.deterministic, device=device):
        model = load_eval_model(config, info.num_classes, Path(checkpoint), device)
        with torch.inference_mode():
            for item in images:
                pixels = torch.from_numpy(item.image).permute(2, 0, 1)[None].to(device)
                batch = to_input(
                    normalize(pixels, mean, std), channels_last=config.train.channels_last
                )
                with autocast(device, precision):
                    logits = model(batch)
                predictions.append(logits.float().argmax(dim=1)[0].to(torch.uint8).cpu().numpy())
    return predictions


def saved_predictions(probs_dir: Path, names: Sequence[str]) -> list[np.ndarray] | None:
    """Label maps from probabilities `rmi eval` saved (the argmax of the fp16 softmax: the
    logits' argmax but where fp16 rounding ties two classes), or None when they are not all
    there."""
    index = probs_dir / "index.json"
    if not index.is_file():
        return None
    try:
        saved = set(json.loads(index.read_text(encoding="utf-8"))["names"])
    except (OSError, ValueError, KeyError):
        return None
    if not set(names) <= saved:
        return None
    return [np.load(probs_dir / f"{name}.npy").argmax(axis=0).astype(np.uint8) for name in names]
