"""The dataset registry: name -> builder, keyed exactly by `config.DatasetName`."""

from __future__ import annotations

from collections.abc import Callable

from rmi_cli.config import DataConfig
from rmi_cli.data.base import SegmentationDataset
from rmi_cli.data.camvid import build_camvid
from rmi_cli.data.folder import build_folder
from rmi_cli.data.synthetic import build_synthetic
from rmi_cli.data.voc import build_voc
from rmi_cli.errors import DataError

DatasetBuilder = Callable[[DataConfig, str], SegmentationDataset]

DATASETS: dict[str, DatasetBuilder] = {
    "camvid": build_camvid,
    "voc2012": build_voc,
    "synthetic": build_synthetic,
    "folder": build_folder,
}


def build_dataset(cfg: DataConfig, split: str) -> SegmentationDataset:
    """One split of the configured dataset; a `DataError` for a missing root, list or file, or
    an unknown split (the message lists the known ones)."""
    builder = DATASETS.get(cfg.name)
    if builder is None:
        raise DataError(f"unknown dataset {cfg.name!r}; known datasets: {', '.join(DATASETS)}")
    return builder(cfg, split)
