"""The dataset registry: name -> builder, keyed exactly by `config.DatasetName`."""

from __future__ import annotations

from collections.abc import Callable

from rmi_cli.config import DataConfig
from rmi_cli.data.base import SegmentationDataset
from rmi_cli.data.camvid import build_camvid
from rmi_cli.data.folder import build_folder
from rmi_cli.data.synthetic import build_synthetic
from rmi_cli.data.voc import build_voc
from rmi_cli.registry import Registry

DatasetBuilder = Callable[[DataConfig, str], SegmentationDataset]

DATASETS: Registry[DatasetBuilder] = Registry("dataset")  # keys: config.DatasetName
DATASETS.register("camvid", build_camvid)
DATASETS.register("voc2012", build_voc)
DATASETS.register("synthetic", build_synthetic)
DATASETS.register("folder", build_folder)


def build_dataset(cfg: DataConfig, split: str) -> SegmentationDataset:
    """One split of the configured dataset; a `DataError` for a missing root, list or file, or
    an unknown split (the message lists the known ones); `UnknownName` for an unknown dataset."""
    return DATASETS.get(cfg.name, field="data.name")(cfg, split)
