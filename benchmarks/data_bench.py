"""Throughput of the training input pipeline: images/s of `build_train_stream` on CamVid.

The recipe's CamVid setting: trainval, crop 479, uniform scale [0.75, 1.25], flip, batch 16.
Back-ends: CPU DataLoader workers (batches delivered to the CPU, and to the GPU when CUDA
exists) and, with CUDA, the GPU-resident cache. The model is not run: this is the pipeline's
ceiling, to compare with the ~300 images/s a bare DeepLabv3-ResNet101 step takes on an H100.

    python benchmarks/data_bench.py --root ../shared/data/camvid --workers 2 8 --batches 40
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from pathlib import Path

import torch

from rmi_cli.config import DataConfig
from rmi_cli.data import build_dataset, build_train_stream
from rmi_cli.data.batches import AugmentSettings, make_batch
from rmi_cli.data.sampling import batch_plan

DEFAULT_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "camvid"


def measure(cfg: DataConfig, *, device: str, batch_size: int, batches: int, warmup: int) -> dict:
    dataset = build_dataset(cfg, "trainval")
    start = time.perf_counter()
    stream = build_train_stream(
        dataset, cfg, batch_size=batch_size, seed=0, start_iteration=0, device=device
    )
    for _ in range(warmup):  # includes worker start-up or the cache's decoding
        images, _labels = next(stream)
    sync(device)
    ready = time.perf_counter()
    for _ in range(batches):
        images, _labels = next(stream)
    sync(device)
    elapsed = time.perf_counter() - ready
    del stream
    return {
        "startup_s": ready - start,
        "images_per_s": batches * batch_size / elapsed,
        "ms_per_batch": 1000 * elapsed / batches,
        "shape": tuple(images.shape),
    }


def camvid_cfg(root: str, crop: int, *, workers: int, gpu_cache: str) -> DataConfig:
    """The recipe's CamVid augmentation (uniform scale [0.75, 1.25], flip)."""
    return DataConfig(
        name="camvid",
        root=root,
        crop_size=crop,
        scale_range=(0.75, 1.25),
        workers=workers,
        gpu_cache=gpu_cache,
    )


def cpu_cost(cfg: DataConfig, *, samples: int = 48) -> tuple[float, float]:
    """CPU milliseconds per image (process time, one thread) to decode and to augment: the
    load-independent cost that sets how many worker cores a throughput needs."""
    torch.set_num_threads(1)
    dataset = build_dataset(cfg, "trainval")
    settings = AugmentSettings.from_config(cfg, dataset.info)
    start = time.process_time()
    decoded = [dataset[i] for i in range(samples)]
    decode = time.process_time() - start
    plans = batch_plan(len(dataset), samples, seed=0, iteration=0)
    start = time.process_time()
    make_batch(lambda i: (decoded[i % samples].image, decoded[i % samples].label), plans, settings)
    augment = time.process_time() - start
    return 1000 * decode / samples, 1000 * augment / samples


def planned_runs(worker_counts: list[int], *, cuda: bool) -> list[tuple[str, int, str, str]]:
    """(label, workers, device, gpu_cache) for each measurement."""
    runs = []
    for workers in worker_counts:
        for device in ["cpu"] + (["cuda"] if cuda else []):
            runs.append((f"workers={workers} -> {device}", workers, device, "off"))
    if cuda:
        runs.append(("gpu cache", max(worker_counts), "cuda", "on"))
    return runs


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("RMI_CAMVID", str(DEFAULT_ROOT)))
    parser.add_argument("--workers", type=int, nargs="+", default=[os.cpu_count() or 1])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--crop", type=int, default=479)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    rows = []
    for label, workers, device, cache in planned_runs(args.workers, cuda=cuda):
        cfg = camvid_cfg(args.root, args.crop, workers=workers, gpu_cache=cache)
        result = measure(
            cfg, device=device, batch_size=args.batch_size, batches=args.batches, warmup=args.warmup
        )
        rows.append((label, result))
    decode_ms, augment_ms = cpu_cost(camvid_cfg(args.root, args.crop, workers=0, gpu_cache="off"))
    card = torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine()
    print(
        f"\n{datetime.date.today()}  torch {torch.__version__}  {card}  "
        f"cpus {os.cpu_count()}  batch {args.batch_size}  crop {args.crop}  CamVid trainval"
    )
    print(f"{'back-end':<24} {'images/s':>9} {'ms/batch':>9} {'start-up s':>11}")
    for label, result in rows:
        print(
            f"{label:<24} {result['images_per_s']:>9.1f} {result['ms_per_batch']:>9.1f} "
            f"{result['startup_s']:>11.1f}"
        )
    print(
        f"CPU cost per image (one thread, process time): decode {decode_ms:.1f} ms, "
        f"augment {augment_ms:.1f} ms -> {1000 / (decode_ms + augment_ms):.0f} images/s per core"
    )


if __name__ == "__main__":
    main()
