"""Renderers: exact snippets of each format."""

from __future__ import annotations

import csv
import io
import json

import pytest
from rich.console import Console
from rich.table import Table

from rmi_cli.errors import UserError
from rmi_cli.report import FORMATS, render
from rmi_cli.report.ablation import ablation_table
from rmi_cli.report.methods import methods_table
from rmi_cli.report.rendering import latex_escape


@pytest.fixture
def table(voc_rows):
    # the rows carry no per-image counts; intervals are rendered in test_report_intervals.py
    return methods_table(
        voc_rows, title="Table 1: VOC val, 50% of runs & more_notes", intervals=False
    )


def test_markdown_is_a_pipe_table_with_bold_best_and_notes_after(table):
    text = render(table, "markdown")
    lines = text.splitlines()
    assert lines[0] == "**Table 1: VOC val, 50% of runs & more_notes**"
    assert (
        lines[2]
        == "| Group | Method | n | Inf. time (ms) | +CRF (ms) | mIoU (%, 21 classes) | Δ vs CE |"
    )
    assert lines[3] == "| :--- | :--- | ---: | ---: | ---: | ---: | ---: |"
    assert "| DeepLabv3 | RMI | 2 | **100.0** |  | **78.70 ± 0.14** | +1.60 |" in lines
    assert "| DeepLabv3+ | Affinity | 0 | — |  | — | — |" in lines
    assert lines[-2] == "" and lines[-1].startswith("Values: mean ± sample std")
    assert "v3p-rmi-seed2: failed" in lines[-1]


def test_latex_is_booktabs_with_textbf_and_escaped_text(table):
    text = render(table, "latex")
    assert r"\caption{Table 1: VOC val, 50\% of runs \& more\_notes}" in text
    assert r"\begin{tabular}{lllrrrrr}" not in text  # n, times, mIoU, delta are right-aligned
    assert r"\begin{tabular}{llrrrrr}" in text
    assert (
        r"Group & Method & n & Inf. time (ms) & +CRF (ms) & mIoU (\%, 21 classes) & "
        r"$\Delta$ vs CE \\" in text
    )
    # the group is named once per block, as in the paper
    assert r"DeepLabv3 & CE & 2 & \textbf{100.0} &  & 77.10 $\pm$ 0.14 & +0.00 \\" in text
    assert "\n" + r" & RMI & 2 & \textbf{100.0} &  & \textbf{78.70 $\pm$ 0.14} & +1.60 \\" in text
    assert r" & CE \& CRF-5 & 2 & 500.0 & 400.0 & 78.40 $\pm$ 0.14 & +1.30 \\" in text
    assert text.count(r"\midrule") == 2  # under the header, and between the two groups
    assert r"\toprule" in text and r"\bottomrule" in text
    assert "---" in text and "—" not in text and "±" not in text
    assert r"\footnotesize Values: mean $\pm$ sample std" in text


def test_latex_escape_covers_the_special_characters():
    assert latex_escape(r"a_b & 5% $x$ #1 {y} ~ ^ \ ") == (
        r"a\_b \& 5\% \$x\$ \#1 \{y\} \textasciitilde{} \textasciicircum{} \textbackslash{} "
    )


def test_csv_has_raw_numbers_with_separate_std_and_n(table):
    text = render(table, "csv")
    records = list(csv.DictReader(io.StringIO(text)))
    assert list(records[0]) == [
        "source", "group", "label", "n", "total_ms", "total_ms_std", "total_ms_n", "crf_ms",
        "crf_ms_std", "crf_ms_n", "miou", "miou_std", "miou_n", "delta",
    ]  # fmt: skip
    rmi = next(r for r in records if (r["group"], r["label"]) == ("DeepLabv3", "RMI"))
    assert (rmi["miou"], rmi["miou_std"], rmi["miou_n"], rmi["delta"]) == (
        "78.7",
        "0.141421",
        "2",
        "1.6",
    )
    assert "**" not in text and "±" not in text
    affinity = next(r for r in records if r["label"] == "Affinity")
    assert (affinity["miou"], affinity["n"]) == ("", "0")


def test_json_round_trips_raw_numbers_and_notes(table):
    document = json.loads(render(table, "json"))
    assert document["kind"] == "methods" and document["meta"]["split"] == "val"
    rmi = next(r for r in document["records"] if (r["group"], r["label"]) == ("DeepLabv3+", "RMI"))
    assert rmi["miou"] == pytest.approx(79.6) and rmi["miou_n"] == 2 and rmi["n"] == 2
    affinity = next(r for r in document["records"] if r["label"] == "Affinity")
    assert affinity["miou"] is None
    assert [c["header"] for c in document["columns"]][:2] == ["Group", "Method"]
    row = next(i for i, r in enumerate(document["records"]) if r is rmi)
    assert [row, "miou"] in document["best"]
    assert any(n.startswith("Inf. time (ms per image)") for n in document["notes"])


def test_rich_table_has_bold_best_cells_and_notes_as_caption(table):
    out = render(table, "rich")
    assert isinstance(out, Table)
    assert out.caption is not None and "bf16" in str(out.caption)
    miou = next(c for c in out.columns if str(c.header) == "mIoU (%, 21 classes)")
    cells = list(miou.cells)
    best = {r for r, key in table.best if key == "miou"}
    assert {i for i, c in enumerate(cells) if c.style == "bold"} == best
    console = Console(width=160, record=True, color_system=None)
    console.print(out)
    text = console.export_text()
    assert "78.70 ± 0.14" in text and "DeepLabv3+" in text


def test_ablation_renders_its_grid(ablation_rows):
    text = render(ablation_table(ablation_rows), "markdown")
    assert "| pool | pool_size=2 | pool_size=4 |" in text
    assert "| avg | **79.30 ± 0.14** | **78.80 ± 0.14** |" in text
    assert "| max | 78.50 (n=1) | 78.70 ± 0.14 |" in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders(table, fmt):
    assert render(table, fmt)


def test_rich_prints_brackets_in_notes_and_headers_as_written(voc_rows):
    table = methods_table(voc_rows)  # intervals on: "[n/a]" cells, "[lo, hi]" in the notes
    console = Console(width=250, record=True, color_system=None)
    console.print(render(table, "rich"))
    text = console.export_text()
    assert "Δ vs CE [95% CI]" in text and "+1.60 [n/a]" in text
    assert "Δ [lo, hi]: 95% bootstrap percentile interval" in text


def test_unknown_format_is_a_user_error(table):
    with pytest.raises(UserError, match="unknown table format 'docx'; known: rich, markdown"):
        render(table, "docx")


def test_html_is_a_table_with_caption_bold_best_and_notes(table):
    text = render(table, "html")
    assert text.startswith('<table class="rmi"><caption>Table 1: VOC val, 50% of runs &amp; ')
    assert '<th class="num">Δ vs CE</th>' in text
    assert '<td class="num"><strong>78.70 ± 0.14</strong></td>' in text
    assert '<tr class="section">' in text  # the rule above DeepLabv3+
    assert text.count("<tr") == len(table.frame) + 1
    assert '<ul class="notes"><li>Values: mean ± sample std' in text
