"""Table values: means, stds, deltas, best cells, CRF rows, missing runs, protocol notes."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from report_rows import PROTOCOL, make_row, run_rows_of

from rmi_cli.errors import UserError
from rmi_cli.report import build_table
from rmi_cli.report.ablation import ablation_table
from rmi_cli.report.methods import methods_table
from rmi_cli.report.per_class import per_class_table
from rmi_cli.report.table import format_cell
from rmi_cli.stored import RunRecord


def row_of(table, group, label):
    frame = table.frame
    hits = frame.index[(frame["group"] == group) & (frame["label"] == label)]
    assert len(hits) == 1, f"{group} {label}: {list(frame['label'])}"
    return int(hits[0])


def cell(table, group, label, key):
    return format_cell(table, row_of(table, group, label), table.column(key))


def test_methods_table_rows_are_in_the_papers_order(voc_rows):
    table = methods_table(voc_rows)
    v3 = table.frame[table.frame["group"] == "DeepLabv3"]["label"].tolist()
    assert v3 == ["CE", "BCE", "CE & CRF-1", "CE & CRF-5", "CE & CRF-10", "RMI"]
    v3p = table.frame[table.frame["group"] == "DeepLabv3+"]["label"].tolist()
    assert v3p == ["CE", "CE & CRF-1", "CE & CRF-5", "Affinity", "RMI"]


def test_methods_table_means_stds_and_deltas(voc_rows):
    table = methods_table(voc_rows)
    assert cell(table, "DeepLabv3", "CE", "miou") == "77.10 ± 0.14"
    assert cell(table, "DeepLabv3", "RMI", "miou") == "78.70 ± 0.14"
    # rows stored without per-image counts: the Δ, and no interval but a way to get one
    assert cell(table, "DeepLabv3", "RMI", "delta") == "+1.60 [n/a]"
    assert any("n/a: re-run rmi eval" in note for note in table.notes)
    assert cell(methods_table(voc_rows, intervals=False), "DeepLabv3", "RMI", "delta") == "+1.60"
    assert cell(table, "DeepLabv3", "BCE", "delta") == "-0.10 [n/a]"
    assert cell(table, "DeepLabv3", "CE", "delta") == "+0.00"  # the baseline: no interval
    assert cell(table, "DeepLabv3+", "RMI", "delta") == "+1.50 [n/a]"  # vs v3+ CE, not v3 CE
    assert cell(table, "DeepLabv3+", "RMI", "n") == "2"
    assert table.frame.at[row_of(table, "DeepLabv3", "RMI"), "delta"] == pytest.approx(1.6)


def test_a_crf_step_on_another_split_is_not_missing_here(voc_rows):
    on_test = make_row("DeepLabv3", "CE", 0, 0.70, split="test", postprocess="crf-1", crf_ms=9.0)
    on_test = replace(on_test, run=on_test.run + "+crf@test")
    methods = methods_table([on_test, *voc_rows], split="val")
    assert cell(methods, "DeepLabv3", "CE & CRF-1", "n") == "2"
    per_class = per_class_table([on_test, *voc_rows], split="val")
    assert cell(per_class, "DeepLabv3", "CE & CRF-5 (best of 1/5/10)", "n") == "2"
    for table in (methods, per_class):
        assert not any("+crf@test" in note for note in table.notes), table.notes
    # Every row keeps its own class IoUs (they are joined on the rows' positions).
    assert cell(per_class, "DeepLabv3", "BCE", "iou.aeroplane") == cell(
        per_class_table(voc_rows, split="val"), "DeepLabv3", "BCE", "iou.aeroplane"
    )


def test_crf_rows_show_total_time_and_the_crfs_share(voc_rows):
    table = methods_table(voc_rows)
    assert cell(table, "DeepLabv3", "CE & CRF-5", "total_ms") == "500.0"
    assert cell(table, "DeepLabv3", "CE & CRF-5", "crf_ms") == "400.0"
    assert cell(table, "DeepLabv3", "CE", "total_ms") == "100.0"
    assert cell(table, "DeepLabv3", "CE", "crf_ms") == ""  # not applicable, not missing
    assert any("network + dense CRF" in note for note in table.notes)


def test_best_cells_per_group_ignore_ties_of_all_equal_values(voc_rows):
    table = methods_table(voc_rows, memory=True)
    assert (row_of(table, "DeepLabv3", "RMI"), "miou") in table.best
    assert (row_of(table, "DeepLabv3+", "RMI"), "miou") in table.best
    assert (row_of(table, "DeepLabv3", "CE & CRF-5"), "miou") not in table.best
    # every row ran at 2048 MB: nothing stands out, nothing is bold
    assert not [key for _, key in table.best if key == "eval_memory_mb"]
    fastest = {r for r, key in table.best if key == "total_ms"}
    assert {table.frame.at[r, "label"] for r in fastest} == {"CE", "BCE", "RMI"}


def test_missing_runs_print_a_dash_and_a_note_saying_why(voc_rows):
    table = methods_table(voc_rows)
    assert cell(table, "DeepLabv3+", "Affinity", "miou") == "—"
    assert cell(table, "DeepLabv3+", "Affinity", "n") == "0"
    assert "DeepLabv3+ Affinity: no result yet (v3p-affinity-seed0: queued)." in table.notes
    assert "DeepLabv3+ RMI: n = 2 of 3 (v3p-rmi-seed2: failed)." in table.notes


def test_protocol_is_stated_next_to_the_times(voc_rows):
    table = methods_table(voc_rows, memory=True)
    timing = next(n for n in table.notes if n.startswith("Inf. time"))
    for fact in ("1449 images", "10 warm-up", "batch size 1", "variable (max 500x500)", "bf16"):
        assert fact in timing
    assert "NVIDIA H100 80GB HBM3" in timing and "median" in timing
    assert PROTOCOL["protocol"] in timing
    assert "indicative" not in timing
    assert any(n.startswith("Peak eval memory (MB)") for n in table.notes)


def test_a_short_warm_up_is_flagged_beside_the_times(voc_rows):
    quick = [replace(row, protocol=PROTOCOL | {"warmup_images": 2}) for row in voc_rows]
    timing = next(n for n in methods_table(quick).notes if n.startswith("Inf. time"))
    assert "after 2 warm-up images (fewer than the protocol's 10: indicative only)" in timing


def test_disagreeing_protocols_are_called_out(voc_rows):
    odd = make_row("DeepLabv3", "RMI", 5, 0.79, protocol=PROTOCOL | {"precision": "fp32"})
    table = methods_table([*voc_rows, odd])
    note = next(n for n in table.notes if "different protocols" in n)
    assert "fp32" in note and "bf16" in note and "v3-rmi-seed5" in note


def test_params_that_vary_within_a_method_get_a_setting_column():
    rows = [
        make_row("DeepLabv3", "CE", 0, 0.70, params={}),
        make_row("DeepLabv3", "RMI", 0, 0.72, params={"loss.radius": 3}),
        make_row("DeepLabv3", "RMI", 1, 0.73, params={"loss.radius": 5}),
    ]
    rows[2] = replace(rows[2], run="v3-rmi-r5-seed1")
    table = methods_table(rows)
    assert [c.header for c in table.columns][:3] == ["Group", "Method", "Setting"]
    assert list(table.frame["setting"]) == ["", "radius=3", "radius=5"]
    assert list(table.frame["delta"]) == pytest.approx([0.0, 2.0, 3.0])


def test_no_baseline_drops_the_delta_column_with_a_note(voc_rows):
    table = methods_table(voc_rows, baseline="Dice")
    assert "delta" not in [c.key for c in table.columns]
    assert any("No Dice row" in n for n in table.notes)


def test_per_class_table_keeps_the_best_crf_and_class_means(voc_rows):
    table = per_class_table(voc_rows)
    labels = table.frame[table.frame["group"] == "DeepLabv3"]["label"].tolist()
    assert labels == ["CE", "BCE", "CE & CRF-5 (best of 1/5/10)", "RMI"]
    assert cell(table, "DeepLabv3+", "CE & CRF-1 (best of 1/5)", "miou") == "79.00 ± 0.14"
    # seed 1 had zero union for sofa: its mean is seed 0's alone, n = 1 in the raw frame
    ce = row_of(table, "DeepLabv3", "CE")
    assert table.frame.at[ce, "iou.sofa"] == pytest.approx(77.0)
    assert table.frame.at[ce, "iou.sofa_n"] == 1
    assert cell(table, "DeepLabv3", "CE", "iou.bird") == "77.10"  # no ± by default
    assert (row_of(table, "DeepLabv3", "RMI"), "iou.bird") in table.best


def test_per_class_table_can_show_every_crf_step_and_class_std(voc_rows):
    table = per_class_table(voc_rows, best_crf=False, class_std=True)
    v3 = table.frame[table.frame["group"] == "DeepLabv3"]["label"].tolist()
    assert v3 == ["CE", "BCE", "CE & CRF-1", "CE & CRF-5", "CE & CRF-10", "RMI"]
    assert cell(table, "DeepLabv3", "RMI", "iou.cat") == "78.70 ± 0.14"


def test_a_class_absent_in_every_seed_is_a_dash_with_its_reason(camvid_rows):
    table = per_class_table(camvid_rows)
    assert cell(table, "DeepLabv3", "RMI", "iou.fence") == "—"
    assert any("zero union" in n and "(fence)" in n for n in table.notes)
    assert [c.header for c in table.columns][3:6] == ["sky", "building", "pole"]


def test_ablation_grid_is_detected_with_cells_mean_std_and_n(ablation_rows):
    table = ablation_table(ablation_rows)
    assert table.meta["rows"] == "loss.pool" and table.meta["cols"] == "loss.pool_size"
    assert list(table.frame["label"]) == ["nearest", "max", "avg"]
    assert [c.header for c in table.columns] == ["pool", "pool_size=2", "pool_size=4"]
    avg, mx = 2, 1
    assert format_cell(table, avg, table.column("loss.pool_size=2")) == "79.30 ± 0.14"
    assert format_cell(table, mx, table.column("loss.pool_size=2")) == "78.50 (n=1)"
    assert table.best == {(avg, "loss.pool_size=2"), (avg, "loss.pool_size=4")}
    assert any("n = 1 of 2 (rmi-pool=max-pool_size=2-seed1: failed)" in n for n in table.notes)


def test_ablation_with_a_method_that_has_no_result_yet(ablation_rows):
    """Runs without their grid coordinates (as `run_rows` gave them until it returned params)
    have no value for the rows key: an "n/a" line, not "ValueError: nan is not in list";
    with their params they take their place in the grid."""
    queued = [
        RunRecord(experiment="voc-table3a", name=f"ce-{size}", run_id=9000 + size,
                  config_hash=f"ce-{size}", kind="train", status="queued", method="CE",
                  group="DeepLabv3")
        for size in (2, 4)
    ]  # fmt: skip
    table = ablation_table(ablation_rows, runs=queued, rows="loss.pool", cols="loss.pool_size")
    lines = list(zip(table.frame["method"], table.frame["label"], strict=True))
    assert lines == [("CE", "n/a"), ("RMI", "nearest"), ("RMI", "max"), ("RMI", "avg")]
    placed = [
        replace(run, params={"loss.pool": "avg", "loss.pool_size": run.run_id - 9000})
        for run in queued
    ]
    table = ablation_table(ablation_rows, runs=placed, rows="loss.pool", cols="loss.pool_size")
    assert "n/a" not in list(table.frame["label"])
    assert any("CE" in n and "ce-2: queued" in n for n in table.notes)


def test_ablation_axes_can_be_swapped_and_are_checked(ablation_rows):
    table = ablation_table(ablation_rows, rows="loss.pool_size", cols="loss.pool")
    assert list(table.frame["label"]) == ["2", "4"]
    assert [c.header for c in table.columns][1:] == ["pool=nearest", "pool=max", "pool=avg"]
    with pytest.raises(UserError, match=r"'loss\.radius' is not a grid key of this experiment"):
        ablation_table(ablation_rows, rows="loss.radius")


def test_ablation_needs_axes_when_three_keys_vary(ablation_rows):
    ablation_rows = [
        replace(row, params={**row.params, "loss.radius": 3 + i % 2})
        for i, row in enumerate(ablation_rows)
    ]
    with pytest.raises(UserError, match="name the rows and columns keys"):
        ablation_table(ablation_rows)
    table = ablation_table(ablation_rows, rows="loss.pool", cols="loss.pool_size")
    assert "Setting" in [c.header for c in table.columns]


def test_one_dimensional_ablation(ablation_rows):
    rows = [
        replace(r, params={"loss.pool_size": r.params["loss.pool_size"]})
        for r in ablation_rows
        if r.params["loss.pool"] == "avg"
    ]
    table = ablation_table(rows)
    assert [c.header for c in table.columns] == ["pool_size", "mIoU (%)"]
    assert list(table.frame["label"]) == ["2", "4"]
    assert table.frame["miou"].tolist() == pytest.approx([79.3, 78.8])
    assert table.best == {(0, "miou")}


def test_ablation_without_a_grid_says_to_use_methods():
    rows = [make_row("DeepLabv3", "CE", 0, 0.7)]
    with pytest.raises(UserError, match="no grid key varies"):
        ablation_table(rows)


def test_build_table_dispatches_and_names_known_kinds(voc_rows):
    assert build_table("methods", voc_rows, baseline="CE").kind == "methods"
    assert build_table("per-class", voc_rows).kind == "per-class"
    with pytest.raises(
        UserError, match="unknown table kind 'grid'; known: methods, per-class, ablation"
    ):
        build_table("grid", voc_rows)


def test_table_of_runs_that_are_all_pending_is_all_dashes():
    rows = [make_row("DeepLabv3", "CE", 0, None, status="queued")]
    table = methods_table(rows)
    assert cell(table, "DeepLabv3", "CE", "miou") == "—"
    assert math.isnan(table.frame.at[0, "total_ms"])
    assert "no split yet" in table.title


def test_runs_without_rows_come_from_the_run_list(voc_rows):
    """As the database gives them: no rows for unevaluated runs; `run_rows` lists every run."""
    runs = run_rows_of(voc_rows)
    runs += [
        RunRecord("voc-table1", "v3p-ce-seed2+crf", run_id=901, config_hash="h901", kind="crf",
                  method="CE", group="DeepLabv3+", status="queued"),
        RunRecord("voc-table1", "v3-bce-seed0+crf", run_id=902, config_hash="h902", kind="crf",
                  method="BCE", group="DeepLabv3", status="running"),
    ]  # fmt: skip
    rows = [r for r in voc_rows if r.miou is not None]
    table = methods_table(rows, runs=runs)
    assert "DeepLabv3+ RMI: n = 2 of 3 (v3p-rmi-seed2: failed)." in table.notes
    assert "DeepLabv3+ Affinity: no result yet (v3p-affinity-seed0: queued)." in table.notes
    assert cell(table, "DeepLabv3+", "Affinity", "miou") == "—"
    assert "DeepLabv3+ CE & CRF-5: n = 2 of 3 (v3p-ce-seed2+crf: queued)." in table.notes
    assert "DeepLabv3 BCE & CRF: no result yet (v3-bce-seed0+crf: running)." in table.notes
    # the CE runs and their CRF jobs are separate runs: neither counts as missing for the other
    assert cell(table, "DeepLabv3", "CE", "n") == "2"
    assert not [n for n in table.notes if n.startswith("DeepLabv3 CE")]
    assert len(table.frame) == 11  # no extra rows for runs without results
