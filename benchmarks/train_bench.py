"""Training throughput: the full step with our input pipeline vs the bare model step.

The bare step reuses one batch already on the device (no data loading at all); the pipeline
step draws every batch from `build_train_stream` (the GPU-resident cache on CUDA); the engine
row runs `train_run` itself (loss read-backs, progress, schedule) and takes the images/s of its
report windows after the first. Target (issue 3): pipeline >= 90% of the bare step.

GPU machine (DeepLabv3-ResNet101, OS 16, batch 16, crop 479, bf16 + channels_last, CE), after
installing the offline wheels as ../shared/docs/gpu.md describes (pydantic is not there):
    PYTHONPATH=$PWD/.pydeps:$PWD python3 benchmarks/train_bench.py --camvid .gpu/camvid
CPU smoke run:
    PYTHONPATH=$PWD python3 benchmarks/train_bench.py --camvid ../shared/data/camvid \
        --device cpu --backbone resnet18 --batch 2 --crop 129 --iters 5
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from rmi_cli.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from rmi_cli.data.loader import build_train_stream
from rmi_cli.engine import train_run
from rmi_cli.engine.runtime import numerics, resolve_device
from rmi_cli.engine.timing import peak_memory_mb, reset_peak_memory, synchronize
from rmi_cli.engine.train import build_run, train_step


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camvid", type=Path, required=True, help="CamVid (SegNet layout) root")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--backbone", default="resnet101")
    parser.add_argument("--model", default="deeplabv3")
    parser.add_argument("--output-stride", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=479)
    parser.add_argument("--iters", type=int, default=30, help="timed steps per round and mode")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before each row")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--no-channels-last", action="store_true")
    parser.add_argument("--loss", default="ce", choices=["ce", "bce", "rmi", "aaf"])
    parser.add_argument(
        "--workers", type=int, default=min(4, os.cpu_count() or 1), help="loader processes"
    )
    parser.add_argument("--gpu-cache", default="auto", choices=["auto", "on", "off"])
    parser.add_argument("--skip-engine", action="store_true", help="omit the train_run row")
    return parser.parse_args()


def make_config(args: argparse.Namespace, iterations: int, log_every: int) -> RunConfig:
    return RunConfig.model_validate(
        {
            "model": ModelConfig(
                name=args.model, backbone=args.backbone, output_stride=args.output_stride
            ).model_dump(),
            "data": DataConfig(
                name="camvid",
                root=str(args.camvid),
                train_split="trainval",
                crop_size=args.crop,
                scale_range=(0.75, 1.25),
                workers=args.workers,
                gpu_cache=args.gpu_cache,
            ).model_dump(),
            "loss": {"name": args.loss},
            "train": TrainConfig(
                iterations=iterations,
                batch_size=args.batch,
                lr=0.025,
                precision=args.precision,
                channels_last=not args.no_channels_last,
                device=args.device,
                checkpoint_every=iterations,
                log_every=log_every,
            ).model_dump(),
        }
    )


def time_steps(step: Callable[[int], None], count: int, device: torch.device) -> float:
    """Seconds per step over `count` calls, synchronised at both ends only."""
    synchronize(device)
    start = time.perf_counter()
    for index in range(count):
        step(index)
    synchronize(device)
    return (time.perf_counter() - start) / count


def bare_and_pipeline(
    args: argparse.Namespace, workdir: Path
) -> dict[str, tuple[float, float | None]]:
    config = make_config(args, iterations=10**6, log_every=10**6)
    device = resolve_device(config.train.device)
    with numerics(deterministic=False, device=device):
        run = build_run(config, workdir, device)
        stream = build_train_stream(
            run.dataset, config.data, batch_size=args.batch, seed=0, device=device
        )
        images, labels = next(stream)

        def bare(index: int) -> None:
            train_step(run, images, labels, index)

        def pipeline(index: int) -> None:
            batch_images, batch_labels = next(stream)
            train_step(run, batch_images, batch_labels, index)

        modes = {"bare model step": bare, "pipeline + step": pipeline}
        for step in modes.values():
            time_steps(step, args.warmup, device)
        # Rounds alternate the two modes, so drift (clocks, other load) hits both alike.
        times: dict[str, list[float]] = {name: [] for name in modes}
        peaks: dict[str, float | None] = {}
        for _ in range(args.rounds):
            for name, step in modes.items():
                reset_peak_memory(device)
                times[name].append(time_steps(step, args.iters, device))
                peaks[name] = peak_memory_mb(device)
    return {name: (statistics.median(times[name]), peaks[name]) for name in modes}


def engine_row(args: argparse.Namespace, workdir: Path) -> float:
    """Mean images/s of train_run's report windows after the first (which holds warm-up)."""
    window = max(1, args.iters // 3)
    iterations = window * (1 + max(1, args.iters // window))
    speeds: list[float] = []
    config = make_config(args, iterations=iterations, log_every=window)
    train_run(
        config, workdir=workdir, on_metrics=lambda m: speeds.append(m.images_per_s), progress=False
    )
    return statistics.fmean(speeds[1:]) if len(speeds) > 1 else speeds[0]


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        rows = bare_and_pipeline(args, Path(scratch) / "steps")
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        engine_speed = None if args.skip_engine else engine_row(args, Path(scratch) / "engine")
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    bare_s = rows["bare model step"][0]
    print(
        f"\n{args.model}-{args.backbone} OS{args.output_stride}, batch {args.batch}, "
        f"crop {args.crop}, loss {args.loss}, precision {args.precision}, "
        f"channels_last {not args.no_channels_last}, median of {args.rounds} rounds x "
        f"{args.iters} steps"
    )
    print(
        f"{name}, torch {torch.__version__}, {datetime.date.today().isoformat()}, "
        f"{torch.get_num_threads()} CPU threads, {args.workers} loader workers"
    )
    print(f"| {'mode':<24} | {'ms/step':>8} | {'images/s':>9} | {'of bare':>7} | {'peak MiB':>8} |")
    print(f"|{'-' * 26}|{'-' * 10}|{'-' * 11}|{'-' * 9}|{'-' * 10}|")
    for mode, (seconds, peak) in rows.items():
        speed = args.batch / seconds
        print(
            f"| {mode:<24} | {seconds * 1000:8.1f} | {speed:9.1f} | "
            f"{bare_s / seconds:7.1%} | {'-' if peak is None else f'{peak:.0f}':>8} |"
        )
    if engine_speed is not None:
        seconds = args.batch / engine_speed
        print(
            f"| {'train_run (engine loop)':<24} | {seconds * 1000:8.1f} | {engine_speed:9.1f} | "
            f"{bare_s / seconds:7.1%} | {'':>8} |"
        )


if __name__ == "__main__":
    main()
