"""`rmi table` intervals and boundary IoU, `rmi figure` and `rmi report` on a really trained
experiment (per-image counts stored by the engine and the CRF, checkpoints on disk)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from browser import dump_dom, screenshot
from cli_kit import EXPERIMENT, Rmi, Workspace
from PIL import Image


def read_csv(text: str) -> dict[str, dict[str, str]]:
    """Rows by label, without the " (from scratch)" every tiny run's label carries."""
    return {
        row["label"].removesuffix(" (from scratch)"): row
        for row in csv.DictReader(io.StringIO(text))
    }


def non_blank(png: Path, *, min_kb: float = 5) -> None:
    assert png.stat().st_size > min_kb * 1024, png
    pixels = np.asarray(Image.open(png).convert("RGB"))
    assert (pixels < 235).any(axis=2).mean() > 0.03, f"{png} looks blank"


def test_methods_table_carries_paired_intervals(trained: Workspace, rmi: Rmi) -> None:
    result = rmi("table", "-e", EXPERIMENT, "-k", "methods", "-f", "csv", "--db", trained.db)
    assert result.code == 0, str(result)
    rows = read_csv(result.out)
    for label in ("RMI", "CE & CRF-1"):
        low, delta, high = (float(rows[label][k]) for k in ("delta_lo", "delta", "delta_hi"))
        assert low <= delta <= high and high > low, rows[label]
    assert rows["CE"]["delta_lo"] == ""  # the baseline row has no interval
    plain = rmi("table", "-e", EXPERIMENT, "-k", "methods", "-f", "csv", "--no-intervals",
                "--db", trained.db)  # fmt: skip
    assert plain.code == 0 and "delta_lo" not in plain.out, str(plain)
    shown = rmi("table", "-e", EXPERIMENT, "-k", "methods", "-f", "markdown", "--db", trained.db)
    assert "Δ vs CE [95% CI]" in shown.out and "2000 resamples" in shown.out


def test_boundary_metric_is_what_the_database_stored(trained: Workspace, rmi: Rmi) -> None:
    result = rmi("table", "-e", EXPERIMENT, "-k", "per-class", "--metric", "boundary-iou",
                 "-f", "json", "--db", trained.db)  # fmt: skip
    assert result.code == 0, str(result)
    table = json.loads(result.out)
    assert table["meta"]["metric"] == "boundary-iou"
    assert any(c["header"].startswith("Boundary mIoU (%") for c in table["columns"])
    with sqlite3.connect(trained.db) as raw:
        stored = dict(raw.execute(
            "SELECT m.name, e.boundary_miou FROM evaluations e JOIN experiment_runs m "
            "ON m.run_id = e.run_id WHERE e.postprocess = 'none'"
        ).fetchall())  # fmt: skip
        blobs = raw.execute("SELECT count(*) FROM image_counts").fetchone()[0]
    assert blobs == 3  # CE, RMI, and CE's CRF-1
    rmi_row = next(r for r in table["records"] if r["label"].startswith("RMI"))
    assert rmi_row["miou"] == pytest.approx(100 * stored["rmi"], abs=1e-6)


def test_figures_from_the_trained_runs(trained: Workspace, rmi: Rmi, tmp_path: Path) -> None:
    out = tmp_path / "q.png"
    result = rmi("figure", "qualitative", "-e", EXPERIMENT, "--runs", "ce,rmi", "--pick",
                 "biggest-gain", "-n", "2", "-o", out, "--db", trained.db)  # fmt: skip
    assert result.code == 0, str(result)
    assert result.out.split() == [str(out), str(out.with_suffix(".svg"))]
    non_blank(out)
    # CE's probabilities were saved for its CRF step; RMI's checkpoint runs on the images
    svg = out.with_suffix(".svg").read_text()
    assert "CE (ce): saved probabilities" in svg and "RMI (rmi): inference (cpu)" in svg
    curves = tmp_path / "c.png"
    result = rmi("figure", "curves", "-e", EXPERIMENT, "-o", curves, "--db", trained.db)
    assert result.code == 0, str(result)
    non_blank(curves)


def test_ablation_figure_of_a_grid(paper_db: Path, rmi: Rmi, tmp_path: Path) -> None:
    out = tmp_path / "a.png"
    result = rmi("figure", "ablation", "-e", "voc-table3b", "-o", out, "--db", paper_db)
    assert result.code == 0, str(result)
    non_blank(out)
    svg = out.with_suffix(".svg").read_text()
    assert "downsampling factor" in svg and "95% bootstrap interval" in svg


def test_report_page_renders_in_a_browser(trained: Workspace, rmi: Rmi, tmp_path: Path) -> None:
    folder = tmp_path / "report"
    result = rmi("report", "-e", EXPERIMENT, "-o", folder, "--db", trained.db)
    assert result.code == 0, str(result)
    page = folder / "index.html"
    assert result.out.strip() == str(page)
    names = sorted(p.name for p in (folder / "figures").iterdir())
    assert names == sorted(f"{n}.{x}" for n in ("curves", "qualitative") for x in ("png", "svg"))
    pixels = screenshot(page, tmp_path / "shot.png", width=1280, height=2400)
    assert (pixels < 235).any(axis=2).mean() > 0.05
    dom = dump_dom(page)
    table = rmi("table", "-e", EXPERIMENT, "-k", "methods", "-f", "html", "--db", trained.db)
    rmi_cell = next(line for line in table.out.splitlines() if '<td class="label">RMI (' in line)
    delta = rmi_cell.rsplit('<td class="num">', 1)[1].removesuffix("</td></tr>")
    assert "[" in delta and delta in dom
    for needle in ("tiny: methods on val", "tiny: per-class IoU on val", "Boundary mIoU (%)",
                   "Protocol and environment", "rmi ablate", "rmi figure qualitative"):  # fmt: skip
        assert needle in dom, needle
