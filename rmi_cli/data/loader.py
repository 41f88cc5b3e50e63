"""The training stream and the evaluation iterator.

`build_train_stream` has two back-ends that give identical batches for the same (seed, t) on the
same device type (`batches.make_batch` is shared):
- "workers": a `DataLoader` whose workers each decode and augment a whole batch (one iteration
  index per task, so worker order does not matter), shipping uint8 tensors (pinned on CUDA);
  the main process normalises on the device;
- "gpu_cache": the split decoded once onto the device and augmented there (`gpu_cache.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from rmi_cli.config import DataConfig
from rmi_cli.data.base import SegmentationDataset
from rmi_cli.data.batches import AugmentSettings, make_batch
from rmi_cli.data.gpu_cache import DeviceCache, choose_backend
from rmi_cli.data.sampling import batch_plan
from rmi_cli.data.transforms import normalize
from rmi_cli.data.worker_errors import surface_worker_errors

PREFETCH_BATCHES = 4  # per worker: enough to ride out one slow JPEG without idling the GPU


class EvalSample(NamedTuple):
    """One whole evaluation image."""

    image: torch.Tensor  # (1, 3, H, W) float32, normalised, on the device
    label: torch.Tensor  # (H, W) int64 on the device, void = 255
    raw_image: np.ndarray  # (H, W, 3) uint8 RGB on the host (the CRF's input)
    name: str


class _BatchTasks(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Item t is batch t of the stream, uint8 and not normalised (made in a worker)."""

    def __init__(
        self,
        dataset: SegmentationDataset,
        settings: AugmentSettings,
        batch_size: int,
        seed: int,
        share: tuple[int, int],
    ) -> None:
        self.dataset = dataset
        self.settings = settings
        self.batch_size = batch_size
        self.seed = seed
        self.rank, self.world_size = share

    def __getitem__(self, iteration: int) -> tuple[torch.Tensor, torch.Tensor]:
        plans = batch_plan(
            len(self.dataset),
            self.batch_size,
            self.seed,
            iteration,
            rank=self.rank,
            world_size=self.world_size,
        )
        return make_batch(self._sample, plans, self.settings)

    def _sample(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        sample = self.dataset[index]
        return sample.image, sample.label


def build_train_stream(
    dataset: SegmentationDataset,
    cfg: DataConfig,
    *,
    batch_size: int,
    seed: int,
    start_iteration: int = 0,
    device: torch.device | str = "cpu",
    share: tuple[int, int] = (0, 1),
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless training batches from `start_iteration` on: images float32 normalised
    (B, 3, crop, crop) and labels int64 (B, crop, crop), both on `device`.

    Batch t is a pure function of (seed, t) (see `sampling.py`), so resuming at k yields exactly
    the batches an uninterrupted stream yields from k. `share = (rank, world_size)`: a
    data-parallel rank's part of every batch (`batch_size` stays the global batch). The GPU
    cache is used when `cfg.gpu_cache` is "on", or "auto" on CUDA when the split fits
    (`gpu_cache.choose_backend`).
    """
    if batch_size < 1 or start_iteration < 0 or batch_size % share[1]:
        raise ValueError(
            f"need batch_size >= 1, a multiple of the world size, and start_iteration >= 0; "
            f"got {batch_size}, world size {share[1]}, {start_iteration}"
        )
    if len(dataset) == 0:
        raise ValueError(f"{dataset!r} is empty: there is nothing to train on")
    device = torch.device(device)
    settings = AugmentSettings.from_config(cfg, dataset.info)
    if choose_backend(dataset, cfg.gpu_cache, device) == "gpu_cache":
        cache = DeviceCache.build(dataset, device, workers=cfg.workers)
        return cache.stream(
            settings,
            batch_size=batch_size,
            seed=seed,
            start_iteration=start_iteration,
            share=share,
        )
    tasks = _BatchTasks(dataset, settings, batch_size, seed, share)
    return _worker_stream(tasks, cfg, start_iteration, device)


def _worker_stream(
    tasks: _BatchTasks, cfg: DataConfig, start_iteration: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    workers, settings = cfg.workers, tasks.settings
    loader = DataLoader(
        tasks,
        batch_size=None,
        sampler=count(start_iteration),  # an endless iterable is fine
        num_workers=workers,
        persistent_workers=workers > 0,
        prefetch_factor=PREFETCH_BATCHES if workers > 0 else None,
        pin_memory=device.type == "cuda",
        # A private generator: otherwise starting the workers draws their base seed from the
        # global torch generator, and a resumed run's RNG stream would depend on the loader.
        generator=torch.Generator(),
    )
    for images, labels in surface_worker_errors(loader):
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        yield normalize(images, settings.mean, settings.std), labels.long()


def iter_eval(
    dataset: SegmentationDataset, cfg: DataConfig, *, device: torch.device | str = "cpu"
) -> Iterator[EvalSample]:
    """Every image of the split, whole and in order, decoded ahead by `cfg.workers` workers."""
    device = torch.device(device)
    mean, std = cfg.mean or dataset.info.mean, cfg.std or dataset.info.std
    loader = DataLoader(
        dataset,
        batch_size=None,
        num_workers=cfg.workers,
        collate_fn=_keep,
        generator=torch.Generator(),
    )
    for sample in surface_worker_errors(loader):
        image = normalize(sample.image.to(device)[None], mean, std)
        label = sample.label.to(device).long()
        raw_image = np.ascontiguousarray(sample.image.permute(1, 2, 0).numpy())
        yield EvalSample(image, label, raw_image, sample.name)


def _keep(sample: Any) -> Any:
    """The collate function of a loader without batching: each sample as it is."""
    return sample
