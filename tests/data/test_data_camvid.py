"""The real CamVid copy (a few images; skipped when ../shared/data/camvid is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rmi_cli.config import DataConfig
from rmi_cli.data import build_dataset

pytestmark = pytest.mark.camvid

TABLE_4_NAMES = (
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


@pytest.fixture(scope="module")
def camvid_cfg(camvid_root: Path) -> DataConfig:
    return DataConfig(name="camvid", root=str(camvid_root))


def test_split_sizes_and_info(camvid_cfg: DataConfig) -> None:
    sizes = {split: len(build_dataset(camvid_cfg, split)) for split in ("train", "val", "test")}
    assert sizes == {"train": 367, "val": 101, "test": 233}
    trainval = build_dataset(camvid_cfg, "trainval")
    assert len(trainval) == 468 and trainval[367].name == build_dataset(camvid_cfg, "val")[0].name
    assert trainval.info.class_names == TABLE_4_NAMES
    assert trainval.info.mean == (100.0, 103.0, 106.0)


@pytest.mark.parametrize("index", [0, 100, 232])
def test_samples_have_shapes_and_void_mapped(
    camvid_cfg: DataConfig, camvid_root: Path, index: int
) -> None:
    dataset = build_dataset(camvid_cfg, "test")
    sample = dataset[index]
    assert sample.image.shape == (3, 360, 480) and sample.image.dtype == torch.uint8
    assert sample.label.shape == (360, 480) and sample.label.dtype == torch.uint8
    raw = np.asarray(Image.open(camvid_root / "testannot" / f"{sample.name}.png"))
    assert torch.equal(sample.label == 255, torch.from_numpy(raw == 11))
    values = set(sample.label.unique().tolist())
    assert values <= set(range(11)) | {255}


def test_void_as_a_class_keeps_label_11_as_the_twelfth_class(
    camvid_root: Path, camvid_cfg: DataConfig
) -> None:
    scored = build_dataset(camvid_cfg.model_copy(update={"void": "class"}), "test")
    assert scored.info.class_names == (*TABLE_4_NAMES, "unlabelled")
    assert scored.info.num_classes == 12
    ignored = build_dataset(camvid_cfg, "test")
    for index in (0, 100):
        raw = np.asarray(Image.open(camvid_root / "testannot" / f"{scored[index].name}.png"))
        label = scored[index].label
        assert torch.equal(label, torch.from_numpy(raw.copy()))  # nothing remapped
        assert (label == 11).any()  # the test images do have "unlabelled" pixels
        mapped = ignored[index].label
        assert torch.equal(mapped == 255, label == 11)
        assert torch.equal(mapped[label != 11], label[label != 11])
