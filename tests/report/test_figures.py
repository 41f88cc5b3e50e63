"""Figures: written as PNG and SVG, of a sensible size, not blank, drawing what they are given;
image selection for the qualitative figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_report_intervals import counted_row

from rmi_cli.records import ImageCounts
from rmi_cli.report.ablation import ablation_table
from rmi_cli.report.figures import ablation_figure
from rmi_cli.report.figures.curves import curves_figure
from rmi_cli.report.figures.qualitative import (
    Qualitative,
    QualitativeImage,
    colourise,
    fallback_palette,
    qualitative_figure,
)
from rmi_cli.report.selection import biggest_gain, per_image_miou
from rmi_cli.stored import TrainingPoint


def check_picture(paths: list[Path], *, min_kb: float = 8, max_kb: float = 2000) -> np.ndarray:
    """PNG and SVG exist, sizes in range, the PNG is not blank; returns its pixels."""
    png, svg = paths
    assert (png.suffix, svg.suffix) == (".png", ".svg")
    assert min_kb * 1024 < png.stat().st_size < max_kb * 1024, png.stat().st_size
    assert svg.read_text().lstrip().startswith("<?xml")
    pixels = np.asarray(Image.open(png).convert("RGB"))
    inked = (pixels < 235).any(axis=2).mean()  # share of pixels that are not (near) white
    assert inked > 0.03, f"{png} looks blank ({inked:.1%} inked)"
    return pixels


def test_curves_one_panel_per_method_with_every_seed(tmp_path):
    points = [
        TrainingPoint(f"{m}-s{s}", m, "DeepLabv3", s, i,
                      (2.0 if m == "CE" else -1.0) / i + 0.01 * s, 0.01 * (1 - i / 100) ** 0.9)
        for m in ("CE", "RMI") for s in (0, 1) for i in range(1, 100, 5)
    ]  # fmt: skip
    paths = curves_figure(points, tmp_path / "curves.png", title="tiny")
    check_picture(paths)
    svg = paths[1].read_text()
    assert "CE" in svg and "RMI" in svg and "learning rate" in svg


def test_curves_without_points_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no training metrics"):
        curves_figure([], tmp_path / "c.png")


def _scene(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    label = np.zeros((48, 64), dtype=np.uint8)
    label[20:, :] = 1
    label[:, 30:32] = 2  # a pole
    label[0, 0] = 255
    image = rng.integers(0, 255, size=(48, 64, 3), dtype=np.uint8)
    return image, label


def test_qualitative_figure_paints_every_panel_in_the_palette(tmp_path):
    rows = []
    for seed in range(2):
        image, label = _scene(seed)
        missed = label.copy()
        missed[missed == 2] = 1
        predictions = {"CE": missed, "RMI": label}
        scores = {"CE": 60.0, "RMI": 80.0}
        rows.append(QualitativeImage(f"img{seed}", image, label, predictions, scores, "+20.0"))
    palette = ((10, 200, 10), (200, 10, 200), (250, 250, 0))
    data = Qualitative(tuple(rows), ("CE", "RMI"), ("grass", "road", "pole"), palette,
                       title="tiny", caption="picked: biggest gain")  # fmt: skip
    pixels = check_picture(qualitative_figure(data, tmp_path / "q.png"))
    colours = {tuple(int(v) for v in p) for p in pixels.reshape(-1, 3)}
    assert set(palette) <= colours  # the dataset's own colours, unblended (nearest)


def test_colourise_and_fallback_palette():
    palette = fallback_palette(12)
    assert len({tuple(c) for c in palette}) == 12
    labels = np.array([[0, 1], [255, 11]], dtype=np.uint8)
    out = colourise(labels, palette, (1, 2, 3))
    assert tuple(out[1, 0]) == (1, 2, 3) and tuple(out[0, 1]) == tuple(palette[1])


def test_ablation_figure_over_the_rows_key_with_interval_error_bars(tmp_path):
    rows = [
        counted_row("RMI", s, q, params={"loss.pool_size": f, "loss.radius": r})
        for s in (0, 1)
        for f, r, q in ((4, 1, 0.6), (4, 3, 0.64), (6, 1, 0.58), (6, 3, 0.62))
    ]
    table = ablation_table(rows, rows="loss.pool_size", cols="loss.radius")
    paths = ablation_figure(table, tmp_path / "a.png", x="loss.pool_size")
    check_picture(paths)
    svg = paths[1].read_text()
    assert "pool_size" in svg and "95% bootstrap interval" in svg
    with pytest.raises(ValueError, match="neither of the table's keys"):
        ablation_figure(table, tmp_path / "b.png", x="loss.pool")


def counts_of(per_image: list[tuple[int, int]], names: tuple[str, ...]) -> ImageCounts:
    """One class; (intersection, union) per image; boundary rows copy them."""
    pairs = np.array(per_image)[:, :, None]  # (N, 2, 1)
    return ImageCounts(names, np.concatenate([pairs, pairs], axis=1), 0.02)


def test_biggest_gain_picks_both_ways():
    names = ("a", "b", "c", "d", "e")
    first = counts_of([(5, 10), (5, 10), (5, 10), (5, 10), (0, 0)], names)
    second = counts_of([(9, 10), (1, 10), (6, 10), (2, 10), (0, 0)], names)
    np.testing.assert_allclose(per_image_miou(second)[:4], [90, 10, 60, 20])
    assert biggest_gain(first, second, 3) == [
        ("a", pytest.approx(40.0)),
        ("c", pytest.approx(10.0)),
        ("b", pytest.approx(-40.0)),
    ]
    shuffled = counts_of([(1, 10), (9, 10), (6, 10), (2, 10), (0, 0)], ("b", "a", "c", "d", "e"))
    assert [n for n, _ in biggest_gain(first, shuffled, 2)] == ["a", "b"]  # aligned by name
