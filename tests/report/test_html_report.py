"""The HTML report: one self-contained page with the tables (and intervals), every figure, the
protocol and environment of every number and the commands; rendered by a real browser."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
from browser import dump_dom, screenshot
from test_figures import _scene
from test_report_intervals import counted_row

from rmi_cli.report.figures.qualitative import Qualitative, QualitativeImage
from rmi_cli.report.html import ReportInputs, TableSpec, write_report
from rmi_cli.report.table import format_cell
from rmi_cli.stored import RunRecord, TrainingPoint

ENVIRONMENT = {"hostname": "box", "device": "cpu", "torch": "2.5", "git_commit": "abc123"}


@pytest.fixture
def inputs() -> ReportInputs:
    rows = [counted_row(m, s, q) for m, q in (("CE", 0.6), ("RMI", 0.66)) for s in (0, 1)]
    old = replace(counted_row("BCE", 0, 0.61), image_counts=None, boundary_miou=None)
    rows = [replace(r, environment=ENVIRONMENT) for r in [*rows, old]]
    points = [
        TrainingPoint(r.run, r.method, r.group, r.seed, i, 1.0 / i, 0.01 * (1 - i / 60))
        for r in rows
        for i in range(1, 60, 4)
    ]
    image, label = _scene(0)
    picture = QualitativeImage("img0", image, label, {"CE": label, "RMI": label})
    qualitative = Qualitative(
        (picture,), ("CE", "RMI"), ("sky", "road", "pole"), title="Qualitative: CE vs RMI"
    )
    return ReportInputs(
        experiment="quickstart",
        records=rows,
        runs=[RunRecord("quickstart", r.run, 1, "h", "train", "done", r.method) for r in rows],
        tables=[
            TableSpec("methods", {"split": "val"}, "rmi table -e quickstart -k methods"),
            TableSpec(
                "per-class",
                {"split": "val", "metric": "boundary-iou"},
                "rmi table -e quickstart -k per-class --metric boundary-iou",
            ),
        ],
        points=points,
        qualitative=qualitative,
        qualitative_command="rmi figure qualitative -e quickstart --runs ce,rmi",
        missing_figures=["No ablation figure: the experiment has no grid."],
        description="CE vs RMI on synthetic scenes.",
        configs={rows[0].run: {"seed": 0, "loss": {"name": "ce"}}},
        commands=["rmi ablate experiments.yaml -e quickstart"],
        generated="rmi report -e quickstart -o report (test)",
    )


def test_the_page_is_self_contained_with_figures_beside_it(inputs, tmp_path):
    page = write_report(inputs, tmp_path / "report")
    assert page == tmp_path / "report" / "index.html"
    names = sorted(p.name for p in (tmp_path / "report" / "figures").iterdir())
    assert names == ["curves.png", "curves.svg", "qualitative.png", "qualitative.svg"]
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == ["figures", "index.html"]
    assert page.stat().st_mode & 0o777 == 0o644  # readable by whoever it is shared with
    text = page.read_text()
    # nothing fetched from elsewhere: no scripts, no stylesheets, no remote images
    assert "<script" not in text and "<link" not in text and "http" not in text
    assert text.count('src="data:image/png;base64,') == 2
    assert 'href="figures/curves.svg"' in text
    for needle in ("Δ vs CE [95% CI]", "Boundary mIoU (%)", "rmi ablate experiments.yaml",
                   "rmi figure qualitative", "Protocol and environment", "abc123",
                   "n/a: re-run rmi eval", "No ablation figure"):  # fmt: skip
        assert needle in text, needle


def test_a_browser_renders_the_tables_and_figures(inputs, tmp_path):
    page = write_report(inputs, tmp_path / "report")
    pixels = screenshot(page, tmp_path / "shot.png", width=1280, height=1800)
    assert pixels.shape[:2] == (1800, 1280)
    inked = (pixels < 235).any(axis=2).mean()
    assert inked > 0.05, f"the page looks blank ({inked:.1%} inked)"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # text, figures, colours
    dom = dump_dom(page)
    from rmi_cli.report.methods import methods_table

    table = methods_table(inputs.records, split="val")
    row = int(np.flatnonzero(table.frame["label"] == "RMI")[0])
    delta = format_cell(table, row, table.column("delta"))
    assert re.search(r"\[\+\d+\.\d\d, \+\d+\.\d\d\]", delta)
    for needle in (
        delta,
        "quickstart: methods on val",
        "Δ vs CE [95% CI]",
        "Qualitative: CE vs RMI",
    ):
        assert needle in dom, needle
    assert dom.count("<img") == 2


def test_a_failure_leaves_no_half_written_report(inputs, tmp_path):
    # the qualitative figure fails after the curves were drawn
    empty = Qualitative((), ("CE",), ("sky",))
    broken = ReportInputs(**{**inputs.__dict__, "qualitative": empty})
    with pytest.raises(ValueError, match="at least one image"):
        write_report(broken, tmp_path / "report")
    assert list((tmp_path / "report").iterdir()) == []
