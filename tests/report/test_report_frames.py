"""Rows -> tidy frames, and the statistics over seeds."""

from __future__ import annotations

import math

import pytest
from report_rows import VOC_CLASSES, make_row

from rmi_cli.errors import UserError
from rmi_cli.report.frames import (
    class_iou_frame,
    method_label,
    resolve_split,
    scores_frame,
    select_split,
    varying_params,
)
from rmi_cli.report.stats import over_seeds


def test_scores_frame_converts_fractions_to_percent_and_labels_crf_rows(voc_rows):
    frame = scores_frame(voc_rows)
    assert len(frame) == len(voc_rows)
    crf = frame[(frame["postprocess"] == "crf-5") & (frame["group"] == "DeepLabv3")]
    assert list(crf["label"]) == ["CE & CRF-5", "CE & CRF-5"]
    assert list(crf["crf_iters"]) == [5, 5]
    assert crf["miou"].tolist() == pytest.approx([78.30, 78.50])
    assert crf["total_ms"].tolist() == [100.0 + 400.0] * 2
    pending = frame[~frame["evaluated"]]
    assert sorted(pending["run"]) == ["v3p-affinity-seed0", "v3p-rmi-seed2"]
    assert set(pending["split"]) == {""} and pending["miou"].isna().all()


def test_method_label_spells_crf_rows_as_the_paper():
    assert method_label("CE", "none") == "CE"
    assert method_label("CE", "crf-10") == "CE & CRF-10"
    assert method_label("CE", "crf-best") == "CE & CRF"


def test_class_iou_frame_is_long_and_keeps_zero_union_as_nan(voc_rows):
    long = class_iou_frame(voc_rows)
    evaluated = [r for r in voc_rows if r.miou is not None]
    assert len(long) == len(evaluated) * len(VOC_CLASSES)
    sofa = long[(long["class_name"] == "sofa") & (long["run"] == "v3-ce-seed1")]
    sofa = sofa[sofa["postprocess"] == "none"]
    assert len(sofa) == 1 and math.isnan(sofa["iou"].iloc[0])
    assert long["class_index"].max() == len(VOC_CLASSES) - 1


def test_over_seeds_gives_mean_sample_std_and_count(voc_rows):
    everything = scores_frame(voc_rows)
    agg = over_seeds(select_split(everything, "val"), ["miou", "total_ms"], everything)
    rmi = agg[(agg["group"] == "DeepLabv3+") & (agg["method"] == "RMI")].iloc[0]
    assert rmi["miou"] == pytest.approx(79.60)
    assert rmi["miou_std"] == pytest.approx(math.sqrt(2 * 0.1**2))  # ddof = 1
    assert (rmi["n"], rmi["runs"]) == (2, 3)
    assert rmi["missing"] == ["v3p-rmi-seed2: failed"]
    affinity = agg[agg["method"] == "Affinity"].iloc[0]
    assert affinity["n"] == 0 and math.isnan(affinity["miou"])
    assert affinity["missing"] == ["v3p-affinity-seed0: queued"]


def test_one_seed_has_no_std():
    rows = [make_row("DeepLabv3", "CE", 0, 0.5)]
    everything = scores_frame(rows)
    agg = over_seeds(everything, ["miou"], everything)
    assert agg["miou"].iloc[0] == 50.0 and math.isnan(agg["miou_std"].iloc[0])


def test_resolve_split_picks_the_only_split_and_refuses_ambiguity(voc_rows):
    assert resolve_split(scores_frame(voc_rows), None) == "val"
    both = [*voc_rows, make_row("DeepLabv3", "CE", 0, 0.7, split="test")]
    with pytest.raises(UserError, match=r"several splits \(test, val\); choose one with --split"):
        resolve_split(scores_frame(both), None)
    with pytest.raises(UserError, match="no results on split 'train'; found results on: val"):
        resolve_split(scores_frame(voc_rows), "train")
    with pytest.raises(UserError, match="no runs to tabulate"):
        resolve_split(scores_frame([]), None)


def test_varying_params_ignores_keys_that_only_follow_the_group(voc_rows, ablation_rows):
    assert varying_params(scores_frame(voc_rows)) == []
    assert varying_params(scores_frame(ablation_rows)) == ["loss.pool", "loss.pool_size"]
