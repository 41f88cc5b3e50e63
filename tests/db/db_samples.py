"""Sample records and job specs for the database tests (real RunConfigs, tiny numbers)."""

from __future__ import annotations

import numpy as np

from rmi_cli.config import RMILossConfig, RunConfig, TrainConfig
from rmi_cli.db import JobSpec
from rmi_cli.records import (
    CRFResult,
    EvalResult,
    Fingerprint,
    ImageCounts,
    InferenceTiming,
    SegmentationScores,
    TrainMetrics,
    TrainResult,
)

NEXT_REVISION = "t900"  # the test-only revision after the real head (two_revisions)


def train_spec(seed: int = 0, *, name: str | None = None, radius: int = 3, **kw: object) -> JobSpec:
    """A real, tiny RunConfig queued as a train job."""
    loss = RMILossConfig(radius=radius)
    config = RunConfig(train=TrainConfig(iterations=5), loss=loss, seed=seed)
    fields: dict = {"name": name or f"rmi-r{radius}-s{seed}", "method": "RMI", "group": "DeepLabv3"}
    fields |= {"params": {"loss.radius": radius}} | kw
    return JobSpec(
        kind="train", config=config.to_json_dict(), config_hash=config.canonical_hash(), **fields
    )


def crf_spec(target: JobSpec, *, name: str | None = None, split: str = "val") -> JobSpec:
    config = {"kind": "crf", "on": target.config_hash, "split": split, "crf": {"iters": [1, 5]}}
    return JobSpec(
        kind="crf",
        config=config,
        config_hash=f"crf-{target.config_hash}-{split}",
        name=name or f"{target.name}+crf",
        method="RMI + CRF",
        group=target.group,
        depends_on=target.config_hash,
    )


def fingerprint(device: str = "cpu") -> Fingerprint:
    return Fingerprint(
        hostname="box",
        platform="Linux-x86_64",
        python="3.11.7",
        torch="2.5.0",
        torchvision="0.20.0",
        device=device,
        num_threads=2,
        git_commit="abc123+dirty",
        rmi_version="0.1.0",
    )


def scores(miou: float = 0.625) -> SegmentationScores:
    return SegmentationScores(
        class_names=("road", "sky", "car"),
        iou=(0.5, None, 0.75),
        miou=miou,
        pixel_accuracy=0.9,
        mean_accuracy=0.8,
        confusion=((5, 0, 1), (0, 0, 0), (1, 0, 3)),
        boundary_iou=(0.25, None, 0.5),
        boundary_miou=0.375,
    )


def image_counts(images: int = 6, *, seed: int = 0) -> ImageCounts:
    """Per-image counts of `images` images x 3 classes (the middle class never occurs)."""
    rng = np.random.default_rng(seed)
    inter = rng.integers(0, 50, size=(images, 4, 3))
    inter[:, :, 1] = 0
    counts = inter + np.array([0, 10, 0, 5])[None, :, None] * (inter > 0)  # union >= inter
    return ImageCounts(tuple(f"img{i}" for i in range(images)), counts, 0.02)


def timing(median_ms: float = 12.5) -> InferenceTiming:
    return InferenceTiming(
        median_ms=median_ms,
        p90_ms=median_ms + 2.0,
        mean_ms=median_ms + 0.5,
        images=20,
        warmup_images=10,
        batch_size=1,
        input_size="360x480",
        device="cpu",
        precision="fp32",
        protocol="batch 1, fp32, forward pass only, median over 20 images after 10 warm-up",
    )


def train_result(**kw: object) -> TrainResult:
    fields: dict = {
        "checkpoint": "/runs/x/checkpoints/last.pt",
        "iterations": 5,
        "final_loss": 0.25,
        "train_time_s": 3.5,
        "images_per_s": 40.0,
        "peak_train_memory_mb": 512.0,
        "rmi_fallbacks": 1,
        "resumed_from": None,
        "fingerprint": fingerprint(),
    }
    return TrainResult(**(fields | kw))


def eval_result(
    split: str = "val", *, miou: float = 0.625, median_ms: float = 12.5, counts: bool = True
) -> EvalResult:
    return EvalResult(
        split=split,
        num_images=6,
        scores=scores(miou),
        timing=timing(median_ms),
        peak_eval_memory_mb=256.0,
        probs_dir="/runs/x/probs/val",
        fingerprint=fingerprint(),
        image_counts=image_counts() if counts else None,
    )


def crf_result(iterations: int = 5, *, split: str = "val", miou: float = 0.65) -> CRFResult:
    return CRFResult(
        split=split,
        iterations=iterations,
        num_images=6,
        scores=scores(miou),
        crf_median_ms=30.0,
        crf_p90_ms=35.0,
        workers=2,
        params={"gaussian_sxy": 3.0, "bilateral_srgb": 13.0},
        fingerprint=fingerprint(),
        image_counts=image_counts(seed=iterations),
    )


def metrics(iterations: range, *, loss: float = 1.0) -> list[TrainMetrics]:
    return [
        TrainMetrics(
            iteration=i, loss=loss / i, lr=0.01, images_per_s=30.0, elapsed_s=0.1 * i, extra={}
        )
        for i in iterations
    ]
