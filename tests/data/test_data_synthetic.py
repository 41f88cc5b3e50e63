"""The synthetic dataset: deterministic, every class present, thin structures thin."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from rmi_cli.config import DataConfig, SyntheticConfig
from rmi_cli.data import build_dataset
from rmi_cli.data.scenes import CLASS_NAMES, POLE, WIRE
from rmi_cli.data.synthetic import INFO, SyntheticDataset


def small(**overrides: int) -> DataConfig:
    return DataConfig(name="synthetic", synthetic=SyntheticConfig(**overrides))


def test_deterministic_by_seed_split_and_index() -> None:
    first, again = build_dataset(small(), "train"), build_dataset(small(), "train")
    for index in (0, 5):
        assert torch.equal(first[index].image, again[index].image)
        assert torch.equal(first[index].label, again[index].label)
    assert not torch.equal(first[0].image, build_dataset(small(seed=1), "train")[0].image)
    assert not torch.equal(first[0].image, build_dataset(small(), "val")[0].image)


def test_splits_sizes_and_trainval() -> None:
    cfg = small(train_images=3, val_images=2, test_images=4, height=40, width=56)
    sizes = {split: len(build_dataset(cfg, split)) for split in INFO.splits}
    assert sizes == {"train": 3, "val": 2, "test": 4, "trainval": 5}
    trainval, val = build_dataset(cfg, "trainval"), build_dataset(cfg, "val")
    assert trainval[3].name == val[0].name == "val_00000"
    assert torch.equal(trainval[4].image, val[1].image)
    assert trainval[0].image.shape == (3, 40, 56) and trainval[-1].label.shape == (40, 56)
    with pytest.raises(IndexError):
        trainval[5]


def test_every_class_appears_and_labels_are_valid() -> None:
    dataset = build_dataset(small(train_images=16), "train")
    labels = torch.stack([dataset[i].label for i in range(len(dataset))])
    values = set(labels.unique().tolist())
    assert values - {255} == set(range(len(CLASS_NAMES)))
    assert 255 in values  # void blobs exercise the ignore index


def _run_lengths(mask: np.ndarray) -> list[int]:
    """Lengths of the runs of True along each row."""
    lengths = []
    for row in mask:
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
        lengths.extend((edges[1::2] - edges[::2]).tolist())
    return lengths


def test_thin_structures_are_one_to_three_pixels() -> None:
    dataset = build_dataset(small(train_images=8), "train")
    pole_widths, wire_heights = [], []
    for index in range(len(dataset)):
        label = dataset[index].label.numpy()
        pole_widths += _run_lengths(label == POLE)
        wire_heights += _run_lengths((label == WIRE).T)
    # Most runs are the structure's own width; longer ones come from crossings and steep wires.
    assert np.median(pole_widths) <= 3 and np.percentile(pole_widths, 90) <= 3
    assert np.median(wire_heights) <= 2
    assert {1, 2, 3} <= set(pole_widths)


def test_fast_enough() -> None:
    dataset = SyntheticDataset(SyntheticConfig(), "test")
    start = time.perf_counter()
    for index in range(8):
        dataset[index]
    assert (time.perf_counter() - start) / 8 < 0.05  # a few ms on a free core; slack for CI


def test_hard_coded_statistics_match_measurement() -> None:
    dataset = build_dataset(small(), "train")
    pixels = torch.stack([dataset[i].image for i in range(len(dataset))]).double()
    mean = pixels.mean(dim=(0, 2, 3))
    std = pixels.std(dim=(0, 2, 3))
    assert torch.allclose(mean, torch.tensor(INFO.mean, dtype=torch.float64), atol=1.0), mean
    assert torch.allclose(std, torch.tensor(INFO.std, dtype=torch.float64), atol=1.0), std
