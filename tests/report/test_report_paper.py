"""The paper's numbers: transcribed exactly, and shown only where they belong."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import pytest
from report_rows import CAMVID_CLASSES, make_row
from report_rows import camvid_rows as camvid_rows_of

from rmi_cli.report import paper_results
from rmi_cli.report.ablation import ablation_table
from rmi_cli.report.methods import methods_table
from rmi_cli.report.per_class import per_class_table
from rmi_cli.report.table import format_cell

SHARED = Path(os.environ.get("RMI_SHARED", Path(__file__).resolve().parents[3] / "shared"))
PAPER = SHARED / "paper" / "rmi-neurips2019.txt"
NUMBER = r"\d+\.\d+"


def table(table_id):
    return next(t for t in paper_results()["tables"] if t["id"] == table_id)


def rows(table_id, group=None):
    return [r for r in table(table_id)["rows"] if group in (None, r["group"])]


@pytest.fixture(scope="module")
def paper_lines():
    if not PAPER.is_file():
        pytest.skip(f"the paper's text is not at {PAPER}")
    return PAPER.read_text("utf-8").replace("\xa0", " ").splitlines()


def between(lines, start, stop):
    first = next(i for i, line in enumerate(lines) if line.startswith(start))
    last = next(i for i in range(first + 1, len(lines)) if lines[i].startswith(stop))
    return lines[first + 1 : last]


def table1_lines(lines, start, stop):
    """(label, seconds or None, mIoU) of each printed row: "CE 0.12 s 77.14", "CE 78.17"."""
    pattern = rf"(.+?)(?: ({NUMBER}) s| unknown)? ({NUMBER})"
    matches = [re.fullmatch(pattern, line) for line in between(lines, start, stop)]
    return [
        (m.group(1), None if m.group(2) is None else float(m.group(2)), float(m.group(3)))
        for m in matches
        if m
    ]


def test_table1_is_transcribed_exactly(paper_lines):
    for start, stop, group in [
        ("(a) ResNet101-DeepLabv3", "(b)", "DeepLabv3"),
        ("(b) ResNet101-DeepLabv3+", "Table 2", "DeepLabv3+"),
    ]:
        printed = table1_lines(paper_lines, start, stop)
        ours = [(r["paper_label"], r.get("inference_s"), r["miou"]) for r in rows("1", group)]
        assert ours == printed
        assert len(ours) == 8


def per_class_lines(lines, start, stop, count):
    out = []
    for line in between(lines, start, stop):
        numbers = re.findall(NUMBER, line)
        if len(numbers) == count + 1:
            out.append((line[: line.index(numbers[0])].strip(), [float(n) for n in numbers]))
    return out


@pytest.mark.parametrize(
    ("table_id", "start", "stop", "count"),
    [("2", "Table 2:", "5.3 Results", 21), ("4", "Table 4:", "6 Conclusion", 11)],
)
def test_per_class_tables_are_transcribed_exactly(paper_lines, table_id, start, stop, count):
    printed = per_class_lines(paper_lines, start, stop, count)
    ours = rows(table_id)
    assert [r["paper_label"] for r in ours] == [p[0] for p in printed]
    assert [[*r["class_iou"], r["miou"]] for r in ours] == [p[1] for p in printed]
    assert len(table(table_id)["headers"]) == count


def test_table3_is_transcribed_exactly(paper_lines):
    for table_id, start, stop in [
        ("3a", "(a) Downsampling manner", "(b) Square region"),
        ("3b", "(b) Square region size", "5.4 Results"),
    ]:
        pattern = rf"(?:DeepLabv3 )?(RMI - \w+\.) (\d) (\d) ({NUMBER})"
        printed = [m.groups() for line in between(paper_lines, start, stop)
                   if (m := re.fullmatch(pattern, line))]  # fmt: skip
        ours = [
            (r["paper_label"], str(r["params"]["loss.pool_size"]), str(r["params"]["loss.radius"]),
             r["miou"]) for r in rows(table_id)
        ]  # fmt: skip
        assert ours == [(a, b, c, float(d)) for a, b, c, d in printed]


def test_spot_checks_against_numbers_read_off_the_paper():
    v3 = {(r["method"], r.get("postprocess", "none")): r for r in rows("1", "DeepLabv3")}
    assert (v3["RMI", "none"]["miou"], v3["RMI", "none"]["inference_s"]) == (78.71, 0.12)
    assert v3["CE", "crf-10"]["inference_s"] == 1.11
    assert rows("1", "DeepLabv3+")[-1]["miou"] == 79.66
    bird = table("2")["headers"].index("bird")
    assert rows("2", "DeepLabv3+")[2]["class_iou"][bird] == 93.72
    ce = rows("4", "DeepLabv3")[0]
    assert (ce["class_iou"][2], ce["miou"]) == (10.12, 58.50)
    assert rows("3b")[-1]["miou"] == 78.26 and rows("3b")[-1]["params"]["loss.radius"] == 5


def test_methods_reference_rows_are_the_papers_table1(voc_rows):
    t = methods_table(voc_rows, reference=True)
    paper = t.frame[t.frame["source"] == "paper"]
    got = paper.set_index(["group", "label"])["miou"].to_dict()
    assert got[("DeepLabv3", "RMI (paper)")] == 78.71
    assert got[("DeepLabv3", "CE & CRF-5 (paper)")] == 78.40
    assert got[("DeepLabv3+", "Affinity (paper)")] == 77.09
    assert ("DeepLabv3+", "CE & CRF-10 (paper)") not in got  # we have no v3+ CRF-10 row
    assert not paper["label"].str.contains(r"\[").any()  # official DeepLab rows stay out
    crf5 = int(
        paper.index[(paper["group"] == "DeepLabv3") & (paper["label"] == "CE & CRF-5 (paper)")][0]
    )
    assert t.frame.at[crf5 - 1, "label"] == "CE & CRF-5"  # right below ours
    assert format_cell(t, crf5, t.column("total_ms")) == "710.0"
    assert format_cell(t, crf5, t.column("crf_ms")) == "590.0"
    assert format_cell(t, crf5, t.column("delta")) == "+1.26"
    rmi = int(paper.index[(paper["group"] == "DeepLabv3") & (paper["label"] == "RMI (paper)")][0])
    assert format_cell(t, rmi, t.column("delta")) == "+1.57"  # the paper's own claim
    assert format_cell(t, rmi, t.column("n")) == ""
    assert not {r for r, _ in t.best} & set(paper.index)
    assert any("Table 1 (PASCAL VOC 2012 val)" in n for n in t.notes)


def test_reference_rows_only_on_their_dataset_and_split(voc_rows, camvid_rows):
    assert (per_class_table(voc_rows, reference=True).frame["source"] == "ours").all()
    t = per_class_table(voc_rows, reference=True)
    assert any(n.startswith("No paper rows") and "not on PASCAL VOC 2012 val" in n for n in t.notes)
    synthetic = [make_row("DeepLabv3", "CE", 0, 0.5, classes=("bg", "pole"))]
    t = methods_table(synthetic, reference=True)
    assert (t.frame["source"] == "ours").all()
    test_rows = [replace(r, split="test") for r in voc_rows]
    t = per_class_table(test_rows, reference=True)
    assert any("Table 2 (PASCAL VOC 2012 test)" in n for n in t.notes)


def test_camvid_reference_row_aligns_class_names(camvid_rows):
    t = per_class_table(camvid_rows, reference=True)
    paper = t.frame[t.frame["source"] == "paper"].set_index("label")
    assert paper.at["CE (paper)", "iou.sign symbol"] == 41.04
    assert paper.at["CE (paper)", "iou.bicyclist"] == 54.51
    assert paper.at["CE & CRF (paper)", "iou.pole"] == 4.70  # matched to our best-of-CRF row


def test_other_spellings_of_class_names_are_recognised(camvid_rows):
    spelled = {"sign symbol": "SignSymbol", "pole": "Column_Pole", "pavement": "Sidewalk"}
    camvid_rows = [
        replace(
            row,
            class_iou={
                spelled.get(k, k if k == "unlabelled" else k.title()): v
                for k, v in row.class_iou.items()
            },
        )
        for row in camvid_rows
    ]
    t = per_class_table(camvid_rows, reference=True)
    paper = t.frame[t.frame["source"] == "paper"].set_index("label")
    assert paper.at["CE (paper)", "iou.SignSymbol"] == 41.04
    assert paper.at["CE (paper)", "iou.Column_Pole"] == 10.12
    assert paper.at["CE (paper)", "iou.Sidewalk"] == 73.21
    assert paper.at["RMI (paper)", "miou"] == 61.11


def test_an_explicit_dataset_field_wins_over_class_names(camvid_rows):
    renamed = [replace(r, dataset="camvid", class_iou={f"c{i}": v for i, v in
               enumerate(r.class_iou.values())}) for r in camvid_rows]  # fmt: skip
    t = per_class_table(renamed, reference=True)
    paper = t.frame[t.frame["source"] == "paper"].set_index("label")
    assert paper.at["RMI (paper)", "iou.c0"] == 89.29  # by position: sky
    assert CAMVID_CLASSES[0] == "sky"


def test_ablation_reference_cells_match_on_params(ablation_rows):
    t = ablation_table(ablation_rows, reference=True)
    paper = t.frame[t.frame["source"] == "paper"].set_index("label")
    assert paper.at["avg (paper)", "loss.pool_size=2"] == 79.23
    assert paper.at["nearest (paper)", "loss.pool_size=4"] == 77.58
    nearest = int(t.frame.index[t.frame["label"] == "nearest (paper)"][0])
    assert format_cell(t, nearest, t.column("loss.pool_size=2")) == ""  # not in the paper


def test_table3b_shaped_grid_finds_both_factors():
    grid = []
    for size in (4, 6):
        for radius in (1, 5):
            row = make_row("DeepLabv3", "RMI", 0, 0.78, experiment="voc-table3b",
                           params={"loss.pool_size": size, "loss.radius": radius})  # fmt: skip
            grid.append(replace(row, run=f"rmi-{size}-{radius}"))
    t = ablation_table(grid, reference=True)
    paper = t.frame[t.frame["source"] == "paper"].set_index("label")
    assert paper.at["4 (paper)", "loss.radius=1"] == 78.25
    assert paper.at["6 (paper)", "loss.radius=5"] == 78.26
    six = int(t.frame.index[t.frame["label"] == "6 (paper)"][0])
    assert format_cell(t, six, t.column("loss.radius=1")) == ""  # the paper has no (6, 1)


def test_eleven_class_camvid_rows_get_no_paper_rows_and_say_why():
    ignored = camvid_rows_of(void="ignore")
    for build in (per_class_table, methods_table):
        t = build(ignored, reference=True)
        assert (t.frame["source"] == "ours").all()
        (note,) = [n for n in t.notes if n.startswith("No paper rows")]
        assert "over 12 classes and these rows score 11" in note
        assert "data.void: class" in note
        assert t.column("miou").header == "mIoU (%, 11 classes)"
        assert "miou_named" not in [c.key for c in t.columns]


def test_twelve_class_camvid_rows_get_both_means_and_the_papers_named_mean(camvid_rows):
    t = per_class_table(camvid_rows, reference=True)
    assert [c.header for c in t.columns][-3:] == [
        "mIoU (%, 12 classes)",
        "mIoU (%, 11 named)",
        "Δ vs CE [95% CI]",
    ]
    ours = t.frame[t.frame["source"] == "ours"].set_index("label")
    # RMI: 10 named classes at 63 %, fence absent (zero union), unlabelled at 30 %
    assert ours.at["RMI", "miou"] == pytest.approx((10 * 63 + 30) / 11)
    assert ours.at["RMI", "miou_named"] == pytest.approx(63.0)
    assert ours.at["RMI", "iou.unlabelled"] == pytest.approx(30.0)
    paper = t.frame[t.frame["source"] == "paper"].set_index("label")
    printed = rows("4", "DeepLabv3")[0]["class_iou"]
    assert paper.at["CE (paper)", "miou_named"] == pytest.approx(sum(printed) / 11, abs=1e-6)
    assert any("final checkpoint" in n for n in t.notes)
    assert any("every 10 epochs" in n for n in t.notes)


def test_paper_rows_only_beside_the_pretrained_rows_of_a_mixed_table(voc_rows):
    scratch = [
        replace(r, pretrained=None, from_scratch=True, run=r.run + "-scratch") for r in voc_rows
    ]
    weights = [replace(r, pretrained="/w.pth") for r in voc_rows]
    t = methods_table(weights + scratch, reference=True)
    frame = t.frame
    marked = frame[frame["group"].str.endswith("(from scratch)")]
    assert len(marked) and marked["label"].str.endswith("(from scratch)").all()
    assert (marked["source"] == "ours").all()
    for i in frame.index[frame["source"] == "paper"]:
        assert not frame.at[i - 1, "group"].endswith("(from scratch)")  # beside a pretrained row
    assert any(n.startswith("Rows trained from scratch have no paper row") for n in t.notes)
    # the two kinds of runs never share a row: the scratch CE mean is its own
    assert len(frame[(frame["source"] == "ours") & (frame["label"] == "CE")]) == 2


def test_ablation_rows_from_scratch_say_so_and_get_no_paper_cells(ablation_rows):
    scratch = [replace(r, pretrained=None, from_scratch=True) for r in ablation_rows]
    t = ablation_table(scratch, reference=True)
    assert (t.frame["source"] == "ours").all()
    assert list(t.frame["label"]) == [f"{v} (from scratch)" for v in ("nearest", "max", "avg")]
    assert any(
        n.startswith("No paper rows: every row here was trained from scratch") for n in t.notes
    )
    assert any("final checkpoint" in n for n in t.notes)
    with_weights = ablation_table(ablation_rows, reference=True)
    assert any("val every 2 epochs" in n for n in with_weights.notes)
