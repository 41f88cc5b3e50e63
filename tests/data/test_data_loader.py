"""The training stream (resume-exact, both back-ends equal) and the evaluation iterator."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import islice

import pytest
import torch

from rmi_cli.config import DataConfig, SyntheticConfig
from rmi_cli.data import build_dataset, build_train_stream, iter_eval, normalize
from rmi_cli.data.gpu_cache import choose_backend, estimate_nbytes
from rmi_cli.data.sampling import batch_plan

# 7 images and batches of 3: batches straddle epochs, which resuming must get right too.
SYNTH = SyntheticConfig(height=32, width=40, train_images=7, val_images=3, test_images=2)


def stream_cfg(**overrides: object) -> DataConfig:
    settings: dict[str, object] = {
        "name": "synthetic",
        "synthetic": SYNTH,
        "crop_size": 36,
        "scale_range": (0.75, 1.5),
        "workers": 0,
        "gpu_cache": "off",
    }
    return DataConfig(**(settings | overrides))


def take(cfg: DataConfig, start: int, count: int, seed: int = 5) -> list[tuple[torch.Tensor, ...]]:
    dataset = build_dataset(cfg, "train")
    stream = build_train_stream(
        dataset, cfg, batch_size=3, seed=seed, start_iteration=start, device="cpu"
    )
    return list(islice(stream, count))


def assert_same(
    first: list[tuple[torch.Tensor, ...]], second: list[tuple[torch.Tensor, ...]]
) -> None:
    assert len(first) == len(second)
    for (a_images, a_labels), (b_images, b_labels) in zip(first, second, strict=True):
        assert torch.equal(a_images, b_images) and torch.equal(a_labels, b_labels)


def test_batches_have_the_contract_shapes() -> None:
    images, labels = take(stream_cfg(), 0, 1)[0]
    assert images.shape == (3, 3, 36, 36) and images.dtype == torch.float32
    assert labels.shape == (3, 36, 36) and labels.dtype == torch.int64
    assert images.abs().max() < 10  # normalised, not 0-255
    assert set(labels.unique().tolist()) <= set(range(10)) | {255}


def test_resume_yields_exactly_the_uninterrupted_batches() -> None:
    cfg = stream_cfg()
    uninterrupted = take(cfg, 0, 6)
    assert_same(take(cfg, 4, 2), uninterrupted[4:])
    assert not torch.equal(uninterrupted[0][0], take(cfg, 0, 1, seed=6)[0][0])


def test_worker_backend_equals_cache_backend_on_cpu() -> None:
    workers = take(stream_cfg(workers=2), 2, 3)
    cache = take(stream_cfg(gpu_cache="on"), 2, 3)
    assert_same(workers, cache)
    assert_same(workers, take(stream_cfg(), 2, 3))


def test_each_epoch_visits_every_image_once() -> None:
    seen = [slot.index for t in range(7) for slot in batch_plan(7, 3, seed=1, iteration=t)]
    assert sorted(seen[:7]) == list(range(7)) and sorted(seen[7:14]) == list(range(7))
    assert seen[:7] != seen[7:14]  # a fresh permutation per epoch


def test_backend_choice_and_size_estimate() -> None:
    dataset = build_dataset(stream_cfg(), "train")
    cpu = torch.device("cpu")
    assert choose_backend(dataset, "auto", cpu) == "workers"
    assert choose_backend(dataset, "on", cpu) == "gpu_cache"
    assert choose_backend(dataset, "off", cpu) == "workers"
    assert estimate_nbytes(dataset) == int(7 * 32 * 40 * 4 * 1.1)


def test_iter_eval_yields_whole_images_in_order() -> None:
    cfg = stream_cfg(workers=1)
    dataset = build_dataset(cfg, "val")
    items = list(iter_eval(dataset, cfg, device="cpu"))
    assert [item.name for item in items] == [dataset[i].name for i in range(3)]
    for item, index in zip(items, range(3), strict=True):
        sample = dataset[index]
        assert item.image.shape == (1, 3, 32, 40) and item.image.dtype == torch.float32
        assert torch.equal(
            item.image[0], normalize(sample.image, dataset.info.mean, dataset.info.std)
        )
        assert item.label.dtype == torch.int64 and torch.equal(item.label, sample.label.long())
        assert item.raw_image.shape == (32, 40, 3) and item.raw_image.flags.c_contiguous
        assert (item.raw_image == sample.image.permute(1, 2, 0).numpy()).all()


def test_config_mean_and_std_override_the_dataset() -> None:
    cfg = stream_cfg(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), scale_range=None)
    images, _ = take(cfg, 0, 1)[0]
    assert images.min() >= 0 and images.max() <= 255 and torch.equal(images, images.round())


def test_import_pulls_in_no_sql_cli_yaml_or_pandas_and_no_cuda() -> None:
    code = (
        "import sys, json, torch; import rmi_cli.data; "
        "print(json.dumps([sorted({m.split('.')[0] for m in sys.modules} & "
        "{'sqlalchemy', 'alembic', 'typer', 'yaml', 'pandas'}), torch.cuda.is_initialized()]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [[], False]


@pytest.mark.gpu
def test_cuda_cache_stream_matches_cpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    cfg = stream_cfg(gpu_cache="on")
    dataset = build_dataset(cfg, "train")
    streams = [
        build_train_stream(dataset, cfg, batch_size=3, seed=5, start_iteration=0, device=device)
        for device in ("cpu", "cuda")
    ]
    for (a_images, a_labels), (b_images, b_labels) in islice(zip(*streams, strict=True), 3):
        assert b_images.is_cuda and b_labels.is_cuda
        assert torch.equal(a_labels, b_labels.cpu())
        assert (a_images - b_images.cpu()).abs().max() <= 1.01 / min(dataset.info.std)
