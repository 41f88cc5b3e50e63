"""evaluate_run on the CPU: scores, timing protocol, saved probabilities, checkpoint errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rmi_cli.config import RunConfig
from rmi_cli.constants import BOUNDARY_FRACTION
from rmi_cli.data import build_dataset
from rmi_cli.engine import checkpoint as ckpt
from rmi_cli.engine import evaluate_run, train_run
from rmi_cli.errors import CheckpointError
from rmi_cli.iou import confusion_counts, mean_iou
from rmi_cli.models import build_model


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, tiny_config: Callable[..., RunConfig]
) -> tuple[RunConfig, Path]:
    config = tiny_config(iterations=2, warmup_iters=0, checkpoint_every=2)
    workdir = tmp_path_factory.mktemp("run")
    result = train_run(config, workdir=workdir, progress=False)
    return config, Path(result.checkpoint)


def test_scores_timing_and_probabilities(trained: tuple[RunConfig, Path], tmp_path: Path) -> None:
    config, checkpoint = trained
    result = evaluate_run(
        config, checkpoint=checkpoint, workdir=tmp_path, save_probs=True, progress=False
    )
    assert result.split == "val" and result.num_images == 3
    scores = result.scores
    assert len(scores.iou) == len(scores.class_names) > 1
    assert 0.0 <= scores.pixel_accuracy <= 1.0 and 0.0 <= scores.miou <= 1.0
    assert sum(map(sum, scores.confusion)) > 0
    timing = result.timing
    assert timing is not None
    assert timing.images == 3 and timing.warmup_images == 2 and timing.batch_size == 1
    assert 0 < timing.median_ms <= timing.p90_ms and timing.mean_ms > 0
    assert timing.input_size == "48x64" and timing.precision == "fp32"
    assert timing.protocol == "forward pass only, wall clock, data loading excluded"
    assert result.peak_eval_memory_mb is None  # CPU
    probs_dir = tmp_path / "probs" / "val"
    assert result.probs_dir == str(probs_dir)
    index = json.loads((probs_dir / "index.json").read_text())
    assert len(index["names"]) == 3 and index["split"] == "val"
    assert index["class_names"] == list(scores.class_names) and index["dataset"] == "synthetic"
    probs = np.load(probs_dir / f"{index['names'][0]}.npy")
    # float32 from float32 logits, as the released code's CRF input (not rounded to fp16)
    assert probs.dtype == np.float32 and probs.shape == (len(scores.class_names), 48, 64)
    assert index["dtype"] == "float32"
    np.testing.assert_allclose(probs.astype(np.float64).sum(axis=0), 1.0, atol=1e-5)


def test_per_image_counts_add_up_to_the_split_scores(
    trained: tuple[RunConfig, Path], tmp_path: Path
) -> None:
    config, checkpoint = trained
    result = evaluate_run(config, checkpoint=checkpoint, workdir=tmp_path, progress=False)
    evidence = result.image_counts
    assert evidence is not None and len(evidence.names) == 3
    assert evidence.counts.shape == (3, 4, len(result.scores.class_names))
    assert evidence.boundary_fraction == BOUNDARY_FRACTION
    summed = evidence.counts.sum(axis=0)
    np.testing.assert_array_equal(summed[:2], confusion_counts(np.array(result.scores.confusion)))
    # a band is part of its mask: boundary counts never exceed the whole-mask counts
    assert (evidence.counts[:, 2:] <= evidence.counts[:, :2]).all()
    assert result.scores.boundary_miou == pytest.approx(float(mean_iou(summed[2], summed[3])))
    assert result.scores.boundary_miou <= 1.0


def test_split_and_max_images(trained: tuple[RunConfig, Path], tmp_path: Path) -> None:
    config, checkpoint = trained
    result = evaluate_run(
        config, checkpoint=checkpoint, split="test", workdir=tmp_path, max_images=1, progress=False
    )
    assert (result.split, result.num_images, result.probs_dir) == ("test", 1, None)
    assert not (tmp_path / "probs").exists()


def test_a_foreign_checkpoint_is_refused(trained: tuple[RunConfig, Path], tmp_path: Path) -> None:
    config, checkpoint = trained
    other = config.model_copy(
        update={"model": config.model.model_copy(update={"name": "deeplabv3plus"})}
    )
    with pytest.raises(CheckpointError, match="expected weights for deeplabv3plus/resnet18"):
        evaluate_run(other, checkpoint=checkpoint, workdir=tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="does not exist"):
        evaluate_run(config, checkpoint=tmp_path / "x.pt", workdir=tmp_path, progress=False)


@pytest.mark.camvid
@pytest.mark.parametrize(("void", "num_classes"), [("ignore", 11), ("class", 12)])
def test_real_camvid_images(
    camvid_root: Path,
    tmp_path: Path,
    tiny_config: Callable[..., RunConfig],
    void: str,
    num_classes: int,
) -> None:
    """Two whole 360x480 test images through an untrained model: the pipeline end to end, with
    "unlabelled" ignored (11 classes) or scored as the 12th class (the release's CamVid)."""
    base = tiny_config()
    data = base.data.model_copy(update={"name": "camvid", "root": str(camvid_root), "void": void})
    config = base.model_copy(update={"data": data})
    torch.manual_seed(0)
    model = build_model(config.model, num_classes=num_classes)
    checkpoint = ckpt.save_checkpoint(
        tmp_path / "checkpoints",
        {
            "iteration": 0,
            "config_hash": config.canonical_hash(),
            "signature": ckpt.model_signature(config.model, num_classes),
            "model": model.state_dict(),
        },
    )
    result = evaluate_run(
        config, checkpoint=checkpoint, split="test", workdir=tmp_path, max_images=2, progress=False
    )
    assert result.num_images == 2
    assert result.scores.class_names[:3] == ("sky", "building", "pole")
    assert len(result.scores.class_names) == num_classes
    assert result.timing is not None and result.timing.input_size == "360x480"
    confusion = np.array(result.scores.confusion)
    assert confusion.shape == (num_classes, num_classes)
    # every pixel with a label below the class count is counted, the rest (255; 11 when
    # ignored) is not: read from the label files themselves
    pairs = build_dataset(config.data, "test").pairs[:2]
    raw = np.concatenate([np.asarray(Image.open(pair.label)).ravel() for pair in pairs])
    assert confusion.sum() == int((raw < num_classes).sum())
    assert (raw == 11).any()  # both images have "unlabelled" pixels: the two modes differ


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_channels_last_train_and_evaluate(
    tmp_path: Path, tiny_config: Callable[..., RunConfig]
) -> None:
    config = tiny_config(iterations=3, warmup_iters=0, device="cuda", checkpoint_every=3)
    result = train_run(config, workdir=tmp_path, progress=False)
    assert result.peak_train_memory_mb is not None and result.peak_train_memory_mb > 0
    assert result.fingerprint.device == torch.cuda.get_device_name()
    evaluation = evaluate_run(
        config, checkpoint=Path(result.checkpoint), workdir=tmp_path, progress=False
    )
    assert evaluation.timing is not None and evaluation.timing.precision == "bf16"
    assert "CUDA-synchronised" in evaluation.timing.protocol
    assert evaluation.peak_eval_memory_mb is not None
