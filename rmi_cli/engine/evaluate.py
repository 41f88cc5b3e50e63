"""Evaluation: whole image, single scale, no flip (recipe section 4), timed per the protocol.

Predictions are the argmax of the logits, which is right for softmax- and sigmoid-trained models
alike (recipe section 1, last bullet). Warm-up passes are extra forwards on the first images and
are not counted; each timed pass is the forward alone between two device synchronisations.
Every image's per-class counts (IoU and boundary IoU) are kept beside the summed confusion
matrix (`records.ImageCounts`), outside the timed region.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rmi_cli.atomic import atomic_write_bytes, atomic_write_json
from rmi_cli.config import RunConfig
from rmi_cli.constants import BOUNDARY_FRACTION
from rmi_cli.data import DatasetInfo, EvalSample, build_dataset, iter_eval
from rmi_cli.engine import checkpoint as ckpt
from rmi_cli.engine.fingerprint import environment_fingerprint
from rmi_cli.engine.progress import TrainProgress
from rmi_cli.engine.runtime import numerics, place_model, resolve_device, to_input
from rmi_cli.engine.timing import (
    autocast,
    peak_memory_mb,
    reset_peak_memory,
    resolve_precision,
    summarize_timing,
    synchronize,
    timed,
)
from rmi_cli.iou import confusion_counts
from rmi_cli.metrics import (
    ConfusionMatrix,
    boundary_counts,
    boundary_width,
    require_labelled,
    scores_from_confusion,
)
from rmi_cli.models import SegmentationModel, build_model
from rmi_cli.records import EvalResult, ImageCounts, InferenceTiming
from rmi_cli.run_folder import RunFolder, probs_file, probs_index


@dataclass
class _Evaluator:
    model: SegmentationModel
    device: torch.device
    precision: str
    channels_last: bool
    confusion: ConfusionMatrix
    probs_dir: Path | None
    times_ms: list[float] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    confusions: list[torch.Tensor] = field(default_factory=list)  # per image (C, C), on device
    boundaries: list[torch.Tensor] = field(default_factory=list)  # per image (2, C), on device

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        with autocast(self.device, self.precision):
            return self.model(to_input(image, channels_last=self.channels_last))

    def warm_up(self, images: list[EvalSample], count: int) -> None:
        for index in range(count):
            self.forward(images[index % len(images)].image)
        synchronize(self.device)

    def process(self, sample: EvalSample) -> None:
        image, label, name = sample.image, sample.label, sample.name
        logits, elapsed_ms = timed(lambda: self.forward(image), self.device)
        logits = logits.float()  # (1, C, H, W); our models already return float32
        self.times_ms.append(elapsed_ms)
        self.sizes.append((int(image.shape[-2]), int(image.shape[-1])))
        self.names.append(name)
        predictions = logits.argmax(dim=1)  # (1, H, W)
        label = label.reshape(predictions.shape)
        self.confusions.append(self.confusion.update(label, predictions))
        height, width_px = label.shape[-2:]
        width = boundary_width(int(height), int(width_px), BOUNDARY_FRACTION)
        classes = self.confusion.num_classes
        self.boundaries.append(boundary_counts(label[0], predictions[0], classes, width))
        if self.probs_dir is not None:
            probs = torch.softmax(logits[0], dim=0).cpu().numpy()  # (C, H, W) float32
            buffer = io.BytesIO()
            np.save(buffer, probs)
            atomic_write_bytes(probs_file(self.probs_dir, name), buffer.getvalue())

    def evidence(self) -> ImageCounts:
        """Every image's counts (`COUNT_ROWS`): IoU from its confusion matrix, then boundary."""
        classes = self.confusion.num_classes
        if not self.names:
            return ImageCounts((), np.zeros((0, 4, classes), np.int64), BOUNDARY_FRACTION)
        confusions = torch.stack(self.confusions).cpu().numpy()  # (N, C, C)
        boundaries = torch.stack(self.boundaries).cpu().numpy()  # (N, 2, C)
        counts = np.concatenate([confusion_counts(confusions), boundaries], axis=1)
        return ImageCounts(tuple(self.names), counts.astype(np.int64), BOUNDARY_FRACTION)


def evaluate_run(
    config: RunConfig,
    *,
    checkpoint: Path,
    split: str | None = None,
    workdir: Path,
    save_probs: bool = False,
    progress: bool = True,
    max_images: int | None = None,
) -> EvalResult:
    """Score `checkpoint` on `split` (default: the configuration's eval split).

    `max_images` (default `config.eval.max_images`) evaluates the first N images only;
    probabilities are saved when `save_probs` or `config.eval.save_probs` asks for them.
    """
    device = resolve_device(config.train.device)
    split = split or config.data.eval_split
    limit = max_images if max_images is not None else config.eval.max_images
    keep_probs = save_probs or config.eval.save_probs
    with numerics(deterministic=config.train.deterministic, device=device):
        # Image sizes vary on VOC: cuDNN's autotuner would re-run inside the timed region.
        torch.backends.cudnn.benchmark = False
        dataset = build_dataset(config.data, split)
        info = dataset.info
        evaluator = _Evaluator(
            model=load_eval_model(config, info.num_classes, Path(checkpoint), device),
            device=device,
            precision=resolve_precision(config.train.precision, device),
            channels_last=config.train.channels_last,
            confusion=ConfusionMatrix(info.num_classes, device=device),
            probs_dir=RunFolder(Path(workdir)).probs(split) if keep_probs else None,
        )
        total = len(dataset) if limit is None else min(limit, len(dataset))
        samples = itertools.islice(iter_eval(dataset, config.data, device=device), total)
        reset_peak_memory(device)
        with torch.inference_mode():
            _evaluate(evaluator, samples, config.eval.warmup_images, total, progress, split)
        peak_mb = peak_memory_mb(device)
    subset = f" (its first {total} images)" if total < len(dataset) else ""
    require_labelled(
        evaluator.confusion.numpy(), f"split {split!r} of the {info.name} dataset{subset}"
    )
    if evaluator.probs_dir is not None:
        _write_index(evaluator.probs_dir, evaluator.names, info, split)
    evidence = evaluator.evidence()
    boundary = evidence.counts[:, 2:].sum(axis=0)  # (2, C) summed over the images
    return EvalResult(
        split=split,
        num_images=len(evaluator.names),
        scores=scores_from_confusion(
            evaluator.confusion.numpy(), info.class_names, boundary=boundary
        ),
        timing=_timing(evaluator, config.eval.warmup_images),
        peak_eval_memory_mb=peak_mb,
        probs_dir=str(evaluator.probs_dir) if evaluator.probs_dir is not None else None,
        fingerprint=environment_fingerprint(device),
        image_counts=evidence,
    )


def _write_index(directory: Path, names: list[str], info: DatasetInfo, split: str) -> None:
    """What the CRF step needs to read the saved probabilities back, written last."""
    atomic_write_json(
        probs_index(directory),
        {
            "names": names,
            "class_names": list(info.class_names),
            "dataset": info.name,
            "split": split,
            "dtype": "float32",
            "layout": "CHW softmax probabilities",
        },
    )


def load_eval_model(
    config: RunConfig, num_classes: int, path: Path, device: torch.device
) -> SegmentationModel:
    """The run's architecture with the checkpoint's weights, in eval mode."""
    state = ckpt.load_checkpoint(path, signature=ckpt.model_signature(config.model, num_classes))
    # The checkpoint overwrites every weight, so the pretrained backbone need not be read.
    model = build_model(
        config.model.model_copy(update={"pretrained": None}), num_classes=num_classes
    )
    ckpt.load_model_weights(model, state, path)
    model = place_model(model, device, channels_last=config.train.channels_last)
    return model.eval()


def _evaluate(
    evaluator: _Evaluator,
    samples: Iterator[EvalSample],
    warmup_images: int,
    total: int,
    progress: bool,
    split: str,
) -> None:
    first = list(itertools.islice(samples, warmup_images))
    if first:
        evaluator.warm_up(first, warmup_images)
    with TrainProgress(
        total=total, start=0, enabled=progress, label=f"eval {split}", metrics=False
    ) as bar:
        for count, sample in enumerate(itertools.chain(first, samples), start=1):
            evaluator.process(sample)
            bar.advance(count)


def _timing(evaluator: _Evaluator, warmup_images: int) -> InferenceTiming | None:
    if not evaluator.times_ms:
        return None
    return summarize_timing(
        evaluator.times_ms,
        warmup_images=warmup_images,
        sizes=evaluator.sizes,
        device=evaluator.device,
        precision=evaluator.precision,
    )
