"""The report layer stays light: pandas, yaml, rich, matplotlib; never torch or SQL."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rmi_cli.report.ablation import ablation_table
from rmi_cli.report.figures import ablation_figure
from rmi_cli.report.methods import methods_table

MODULES = [
    "rmi_cli.report",
    "rmi_cli.report.rendering",
    "rmi_cli.report.figures",
    "rmi_cli.report.html",
    "rmi_cli.report.paper",
]


def test_report_imports_neither_torch_nor_sql_and_reads_nothing_at_import():
    code = (
        "import sys, json, importlib\n"
        f"for m in {MODULES!r}: importlib.import_module(m)\n"
        "from rmi_cli.report.paper import paper_results\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules}\n"
        "               & {'torch', 'sqlalchemy', 'alembic', 'typer', 'pydensecrf'})\n"
        "print(json.dumps([heavy, paper_results.cache_info().currsize]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    heavy, cached = json.loads(out)
    assert heavy == []
    assert cached == 0  # the YAML is read on first use, not on import


def test_ablation_figure_writes_a_png_and_an_svg(ablation_rows, tmp_path):
    paths = ablation_figure(ablation_table(ablation_rows, reference=True), tmp_path / "grid.png")
    assert [p.name for p in paths] == ["grid.png", "grid.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_text().lstrip().startswith("<?xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png", "grid.svg"]  # no partials


def test_ablation_figure_refuses_other_tables(voc_rows, tmp_path):
    with pytest.raises(ValueError, match="needs an ablation table"):
        ablation_figure(methods_table(voc_rows), tmp_path / "x.png")
