"""A split decoded once into uint8 tensors on the training device, augmented there.

CamVid's trainval split is ~330 MB decoded and VOC's trainaug ~8 GB: small next to an H100's
memory, and keeping them on the GPU takes JPEG decoding and the bicubic resize off the CPU, so the
input pipeline cannot starve the model (the bare ResNet-101 step eats ~300 images/s).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from typing import Any, Literal

import torch
from torch.utils.data import DataLoader

from rmi_cli.data.base import Sample, SegmentationDataset
from rmi_cli.data.batches import AugmentSettings, make_batch
from rmi_cli.data.sampling import batch_plan
from rmi_cli.data.transforms import normalize
from rmi_cli.data.worker_errors import surface_worker_errors

# "auto" caches when the decoded split needs at most this share of the free device memory,
# leaving the rest to the model's activations.
FREE_MEMORY_SHARE = 0.25
PROBES = 16  # samples decoded to estimate the size of a split with varying image sizes


@dataclass
class DeviceCache:
    """Every image and label of a split, uint8, on one device."""

    images: list[torch.Tensor]  # each (3, H, W)
    labels: list[torch.Tensor]  # each (H, W)

    @classmethod
    def build(
        cls, dataset: SegmentationDataset, device: torch.device, *, workers: int
    ) -> DeviceCache:
        """Decode the whole split (in `workers` processes) and copy it to `device`."""
        loader = DataLoader(
            dataset,
            batch_size=None,
            num_workers=workers,
            collate_fn=_keep,
            generator=torch.Generator(),  # leave the global generator alone (exact resume)
        )
        images, labels = [], []
        for sample in surface_worker_errors(loader):
            images.append(sample.image.to(device))
            labels.append(sample.label.to(device))
        return cls(images, labels)

    def sample(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def stream(
        self,
        settings: AugmentSettings,
        *,
        batch_size: int,
        seed: int,
        start_iteration: int,
        share: tuple[int, int] = (0, 1),
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Normalised batches (this rank's share of each) from `start_iteration` on, made on
        the cache's device."""
        rank, world_size = share
        for iteration in count(start_iteration):
            plans = batch_plan(
                len(self.images), batch_size, seed, iteration, rank=rank, world_size=world_size
            )
            images, labels = make_batch(self.sample, plans, settings)
            yield normalize(images, settings.mean, settings.std), labels.long()


def estimate_nbytes(dataset: SegmentationDataset) -> int:
    """The decoded size of a split, from a few evenly spaced samples (+10% for the spread)."""
    size = len(dataset)
    picks = sorted({i * size // min(PROBES, size) for i in range(min(PROBES, size))})
    probed = sum(_nbytes(dataset[i]) for i in picks)
    return int(probed / len(picks) * size * 1.1)


def choose_backend(
    dataset: SegmentationDataset, mode: Literal["auto", "on", "off"], device: torch.device
) -> Literal["gpu_cache", "workers"]:
    """Where training batches are made: "on" always caches (on any device, the CPU included),
    "auto" caches on CUDA when the split fits `FREE_MEMORY_SHARE` of the free memory."""
    if mode == "on":
        return "gpu_cache"
    if mode == "off" or device.type != "cuda":
        return "workers"
    free, _ = torch.cuda.mem_get_info(device)
    return "gpu_cache" if estimate_nbytes(dataset) <= FREE_MEMORY_SHARE * free else "workers"


def _nbytes(sample: Sample) -> int:
    return sample.image.numel() + sample.label.numel()


def _keep(sample: Any) -> Any:
    """The collate function of a loader without batching: each sample as it is."""
    return sample
