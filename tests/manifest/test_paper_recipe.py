"""The paper's experiments in experiments.yaml follow the released code's recipe (docs/recipe.md,
sections 3 and 4), value by value, in the pretrained experiments and their from-scratch twins."""

from __future__ import annotations

from pathlib import Path

import pytest

from rmi_cli.manifest import load_manifest

REPO = Path(__file__).resolve().parents[2]
BATCH = 16

# Recipe section 4, with the released code's choices where it differs from the paper's text.
RECIPE = {
    "camvid": {
        "epochs": 200,
        "train_images": 367 + 101,
        "lr": 0.025,
        "warmup": 300,
        "crop": 481,  # script/train.sh at batch 16 (the paper says 479)
        "scale_range": (0.75, 1.25),
        "scales": None,
        "void": "class",
        "head": {"deeplabv3": 10.0, "deeplabv3plus": 10.0},
    },
    "voc2012": {
        "epochs": 46,
        "train_images": 10582,
        "lr": 0.007,
        "warmup": 1500,
        "crop": 513,
        "scale_range": None,
        "scales": (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0),
        "void": "ignore",
        "head": {"deeplabv3": 10.0, "deeplabv3plus": 5.0},
    },
}
PAPER = ["camvid-table4", "voc-table1", "voc-table2", "voc-table3a", "voc-table3b"]
EXPERIMENTS = [*PAPER, *(f"{name}-scratch" for name in PAPER)]


@pytest.fixture(scope="module")
def manifest():
    return load_manifest(REPO / "experiments.yaml")


def test_iterations_are_epochs_times_full_batches() -> None:
    # train.py: max_iter = len(train_loader) * epochs with drop_last=True
    assert RECIPE["camvid"]["epochs"] * (468 // BATCH) == 5800
    assert RECIPE["voc2012"]["epochs"] * (10582 // BATCH) == 30406


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_run_follows_the_released_recipe(manifest, experiment: str) -> None:
    runs = manifest.plan(experiment).runs
    assert runs
    for run in runs:
        config = run.config
        recipe = RECIPE[config.data.name]
        model, data, train = config.model, config.data, config.train
        assert (model.backbone, model.deep_stem, model.output_stride) == ("resnet101", True, 16)
        assert (model.layout, model.bn_momentum, model.dropout) == ("released", 0.05, 0.1)
        expected_weights = None if experiment.endswith("-scratch") else "${RMI_RESNET101_DEEP_STEM}"
        assert model.pretrained == expected_weights
        steps = recipe["epochs"] * (recipe["train_images"] // BATCH)
        assert (train.iterations, train.batch_size) == (steps, BATCH)
        assert (train.lr, train.warmup_iters, train.warmup_lr) == (
            recipe["lr"],
            recipe["warmup"],
            1e-4,
        )
        assert (train.momentum, train.weight_decay, train.poly_power, train.min_lr) == (
            0.9,
            1e-4,
            0.9,
            1e-6,
        )
        assert config.head_lr_mult() == recipe["head"][model.name], run.name
        assert (data.crop_size, data.scale_range, data.scales) == (
            recipe["crop"],
            recipe["scale_range"],
            recipe["scales"],
        )
        assert data.void == recipe["void"] and data.flip
        assert data.mean is None and data.std is None  # the dataset's own (recipe table)
