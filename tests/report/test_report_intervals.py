"""Intervals in the tables: rows with per-image counts get `Δ [lo, hi]` equal to the bootstrap
on their counts; rows without say n/a and how to fix it; the boundary-IoU metric."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

import numpy as np
import pytest
from report_rows import make_row

from rmi_cli.iou import class_iou, mean_iou
from rmi_cli.records import ImageCounts
from rmi_cli.report import render
from rmi_cli.report.ablation import ablation_table
from rmi_cli.report.bootstrap import Evidence, interval, paired_difference
from rmi_cli.report.methods import methods_table
from rmi_cli.report.per_class import per_class_table
from rmi_cli.report.table import format_cell
from rmi_cli.stored import EvaluationRecord

CLASSES = ("sky", "road", "pole")
IMAGES = 40


def counts(quality: float, seed: int) -> ImageCounts:
    """Per-image counts of a method of the given quality; `seed` varies the images' noise
    (the same image names every time)."""
    rng = np.random.default_rng(seed)
    area = rng.integers(100, 1000, size=(IMAGES, len(CLASSES)))
    area[:, 2] = rng.integers(0, 30, size=IMAGES)  # a thin class
    inter = rng.binomial(area, np.clip(quality + rng.normal(0, 0.05, area.shape), 0, 1))
    union = 2 * area - inter
    band = np.stack([inter // 4, union // 3], axis=1)  # boundary counts: harsher
    stacked = np.concatenate([np.stack([inter, union], axis=1), band], axis=1)
    return ImageCounts(tuple(f"img{i:02d}" for i in range(IMAGES)), stacked, 0.02)


def counted_row(method: str, seed: int, quality: float, **kw: object) -> EvaluationRecord:
    evidence = counts(quality, seed=100 * seed + int(1000 * quality))
    inter, union = evidence.counts.sum(axis=0)[:2]
    b_inter, b_union = evidence.counts.sum(axis=0)[2:]
    row = make_row(
        "DeepLabv3",
        method,
        seed,
        float(mean_iou(inter, union)),
        classes=CLASSES,
        class_iou=dict(zip(CLASSES, map(float, class_iou(inter, union)), strict=True)),
        experiment="quickstart",
        **kw,
    )
    boundary = dict(zip(CLASSES, map(float, class_iou(b_inter, b_union)), strict=True))
    return replace(
        row,
        image_counts=evidence,
        boundary_miou=float(mean_iou(b_inter, b_union)),
        class_boundary_iou=boundary,
    )


@pytest.fixture
def rows() -> list[EvaluationRecord]:
    return [counted_row(m, s, q) for m, q in (("CE", 0.6), ("RMI", 0.66)) for s in (0, 1)]


def evidence_of(rows: list[EvaluationRecord], method: str) -> Evidence:
    mine = [r.image_counts for r in rows if r.method == method]
    return Evidence(
        np.stack([c.counts[:, 0] for c in mine]), np.stack([c.counts[:, 1] for c in mine]), (0, 1)
    )


def rmi_row(table) -> int:
    return int(np.flatnonzero(table.frame["label"] == "RMI")[0])


def test_methods_table_shows_the_paired_bootstrap_interval(rows):
    table = methods_table(rows)
    row = rmi_row(table)
    expected = paired_difference(evidence_of(rows, "RMI"), evidence_of(rows, "CE"))
    low, high = table.frame.at[row, "delta_lo"], table.frame.at[row, "delta_hi"]
    assert (low, high) == pytest.approx((100 * expected.low, 100 * expected.high))
    delta = table.frame.at[row, "delta"]
    assert 0 < low < delta < high
    text = format_cell(table, row, table.column("delta"))
    assert text == f"{delta:+.2f} [{low:+.2f}, {high:+.2f}]"
    assert table.column("delta").header == "Δ vs CE [95% CI]"
    assert any("bootstrap percentile interval (2000 resamples, seed 0)" in n for n in table.notes)
    again = methods_table(rows)
    assert again.frame.at[row, "delta_lo"] == low  # seeded: the same table every time


def test_csv_and_json_carry_both_bounds_and_the_flag_turns_them_off(rows):
    table = methods_table(rows)
    records = list(csv.DictReader(io.StringIO(render(table, "csv"))))
    rmi = next(r for r in records if r["label"] == "RMI")
    assert float(rmi["delta_lo"]) < float(rmi["delta"]) < float(rmi["delta_hi"])
    document = json.loads(render(table, "json"))
    found = next(r for r in document["records"] if r["label"] == "RMI")
    assert found["delta_lo"] == pytest.approx(table.frame.at[rmi_row(table), "delta_lo"], abs=1e-6)
    plain = methods_table(rows, intervals=False)
    assert "delta_lo" not in render(plain, "csv")
    assert "[" not in format_cell(plain, rmi_row(plain), plain.column("delta"))


def test_per_class_table_has_the_interval_too(rows):
    table = per_class_table(rows)
    assert "[" in format_cell(table, rmi_row(table), table.column("delta"))


def test_identical_rows_have_an_interval_of_exactly_zero(rows):
    twin = [replace(r, method="RMI", run=r.run + "-twin") for r in rows if r.method == "CE"]
    table = methods_table([r for r in rows if r.method == "CE"] + twin)
    row = rmi_row(table)
    assert (table.frame.at[row, "delta_lo"], table.frame.at[row, "delta_hi"]) == (0.0, 0.0)
    assert format_cell(table, row, table.column("delta")) == "+0.00 [+0.00, +0.00]"


def test_rows_stored_before_the_counts_say_na_and_what_to_do(rows):
    old = [replace(r, image_counts=None) if r.method == "RMI" else r for r in rows]
    table = methods_table(old)
    row = rmi_row(table)
    assert format_cell(table, row, table.column("delta")).endswith(" [n/a]")
    (note,) = [n for n in table.notes if n.startswith("[n/a]")]
    assert "DeepLabv3 RMI" in note and "n/a: re-run rmi eval" in note


def test_rows_on_other_images_are_not_paired(rows):
    other = counts(0.66, 3)
    renamed = ImageCounts(tuple(f"x{i}" for i in range(IMAGES)), other.counts, 0.02)
    mixed = [replace(r, image_counts=renamed) if r.method == "RMI" else r for r in rows]
    table = methods_table(mixed)
    assert table.frame.at[rmi_row(table), "delta_why"] == "evaluated on different images"


def test_boundary_metric_tabulates_the_boundary_iou_and_its_interval(rows):
    table = methods_table(rows, metric="boundary-iou")
    assert table.column("miou").header == "Boundary mIoU (%, 3 classes)"
    row = rmi_row(table)
    expected = np.mean([r.boundary_miou for r in rows if r.method == "RMI"]) * 100
    assert table.frame.at[row, "miou"] == pytest.approx(expected)
    mine = [r.image_counts for r in rows]
    rmi = Evidence(np.stack([c.counts[:, 2] for c in mine[2:]]),
                   np.stack([c.counts[:, 3] for c in mine[2:]]), (0, 1))  # fmt: skip
    ce = Evidence(np.stack([c.counts[:, 2] for c in mine[:2]]),
                  np.stack([c.counts[:, 3] for c in mine[:2]]), (0, 1))  # fmt: skip
    found = paired_difference(rmi, ce)
    assert table.frame.at[row, "delta_lo"] == pytest.approx(100 * found.low)
    assert any(n.startswith("Boundary IoU (Cheng et al.") for n in table.notes)
    per_class = per_class_table(rows, metric="boundary-iou")
    pole = per_class.frame.at[rmi_row(per_class), "iou.pole"]
    assert pole == pytest.approx(100 * np.mean([r.class_boundary_iou["pole"] for r in rows[2:]]))


def test_boundary_metric_on_old_rows_says_rerun(rows):
    old = [replace(r, boundary_miou=None, class_boundary_iou={}) for r in rows]
    table = methods_table(old, metric="boundary-iou", intervals=False)
    assert format_cell(table, rmi_row(table), table.column("miou")) == "—"
    assert any("n/a: re-run rmi eval" in n for n in table.notes)


def test_ablation_cells_carry_their_own_intervals():
    rows = [
        counted_row("RMI", s, q, params={"loss.pool": "avg", "loss.pool_size": f})
        for s in (0, 1)
        for f, q in ((2, 0.62), (4, 0.66))
    ]
    table = ablation_table(rows, rows="loss.pool", cols="loss.pool_size")
    assert {"loss.pool_size=2_lo", "loss.pool_size=4_hi"} <= set(table.frame.columns)
    mine = [r.image_counts for r in rows if r.params["loss.pool_size"] == 4]
    found = interval(Evidence(np.stack([c.counts[:, 0] for c in mine]),
                              np.stack([c.counts[:, 1] for c in mine]), (0, 1)))  # fmt: skip
    assert table.frame.at[0, "loss.pool_size=4_lo"] == pytest.approx(100 * found.low)
    assert "loss.pool_size=4_lo" in render(table, "csv").splitlines()[0]
