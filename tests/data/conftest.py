"""Tiny dataset trees written into tmp_path: a VOCdevkit with palette PNGs plus an SBD folder,
and a `folder` dataset. Legitimate test data: a few pixels each, made by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_trees import stripes, write_image, write_label


@pytest.fixture
def voc_tree(tmp_path: Path) -> Path:
    """tmp/VOCdevkit/VOC2012 (train a b, val c) and tmp/sbd/SegmentationClassAug (a b c d)."""
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    for seed, stem in enumerate("abcd"):
        write_image(voc / "JPEGImages" / f"{stem}.jpg", seed=seed)
        label = stripes(classes=5)
        if stem != "d":
            write_label(voc / "SegmentationClass" / f"{stem}.png", label, palette=True)
        write_label(tmp_path / "sbd" / "SegmentationClassAug" / f"{stem}.png", label)
    lists = voc / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("a\nb\n")
    (lists / "val.txt").write_text("c\n")
    (lists / "trainval.txt").write_text("a\nb\nc\n")
    aug = "".join(f"/JPEGImages/{s}.jpg /SegmentationClassAug/{s}.png\n" for s in "abd")
    (tmp_path / "sbd" / "train_aug.txt").write_text(aug)
    return tmp_path


@pytest.fixture
def folder_tree(tmp_path: Path) -> Path:
    """A 3-class folder dataset: train x y (PNG, JPEG), val z."""
    root = tmp_path / "mine"
    for seed, (stem, suffix) in enumerate([("x", "png"), ("y", "jpg"), ("z", "png")]):
        write_image(root / "images" / f"{stem}.{suffix}", seed=seed)
        write_label(root / "labels" / f"{stem}.png", stripes())
    (root / "classes.txt").write_text("# label order\nground\ntall grass\nsky\n")
    (root / "train.txt").write_text("x\ny\n")
    (root / "val.txt").write_text("z\n")
    return root
