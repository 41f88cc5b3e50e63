"""Datasets, augmentation and the input pipeline (torch only: no SQL, CLI, YAML or pandas).

See docs/design.md, "data", for the contract. Nothing here reads a file or touches CUDA on import.
"""

from rmi_cli.data.base import DatasetInfo, Sample, SegmentationDataset
from rmi_cli.data.loader import EvalSample, build_train_stream, iter_eval
from rmi_cli.data.registry import DATASETS, build_dataset
from rmi_cli.data.transforms import normalize, train_augment

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "EvalSample",
    "Sample",
    "SegmentationDataset",
    "build_dataset",
    "build_train_stream",
    "iter_eval",
    "normalize",
    "train_augment",
]
