"""`rmi table` on the shipped camvid-table4 (and its from-scratch twin), queued with `rmi ablate
--workers 0` and filled with hand-made 12-class confusion matrices stored as a worker stores
them: the "unlabelled" column, the 12- and 11-class means, and paper rows only beside rows
computed the way the paper's were."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from cli_kit import FINGERPRINT, REPO, TIMING, Rmi, query

from rmi_cli.cli.app import run
from rmi_cli.db import claim, complete, open_database, store_crf, store_evaluation
from rmi_cli.metrics import scores_from_confusion
from rmi_cli.records import CRFResult, EvalResult
from rmi_cli.report import paper_results

CLASSES = (
    "sky", "building", "pole", "road", "pavement", "tree", "sign symbol", "fence", "car",
    "pedestrian", "bicyclist", "unlabelled",
)  # fmt: skip
# Per method: extra correct pixels on the diagonal of every class (rows: truth).
BONUS = {"CE": 0, "BCE": 20, "Affinity": 40, "RMI": 60}


def confusion(method: str, crf_iters: int = 0) -> np.ndarray:
    """A hand-made 12 x 12 confusion: 10 pixels in every cell, 100 + 7 i on the diagonal (so
    classes differ), "unlabelled" (11) often predicted as road (3), plus the method's bonus."""
    matrix = np.full((12, 12), 10, dtype=np.int64)
    matrix[np.arange(12), np.arange(12)] = 100 + 7 * np.arange(12) + BONUS[method] + crf_iters
    matrix[11, 3] = 90
    return matrix


def iou_float64(matrix: np.ndarray) -> np.ndarray:
    """IoU per class written out here, in float64: TP / (row + column - TP)."""
    m = matrix.astype(np.float64)
    tp = np.diag(m)
    return tp / (m.sum(axis=1) + m.sum(axis=0) - tp)


def fill(db_path: Path) -> None:
    with open_database(str(db_path)) as db:
        while (job := claim(db, worker="test:1")) is not None:
            if job.kind == "train":
                method = {"ce": "CE", "bce": "BCE", "aaf": "Affinity", "rmi": "RMI"}
                scores = scores_from_confusion(
                    confusion(method[job.config["loss"]["name"]]), CLASSES
                )
                store_evaluation(
                    db, job.id, EvalResult("test", 233, scores, TIMING, None, None, FINGERPRINT)
                )
            else:
                for iters in job.config["crf"]["iters"]:
                    scores = scores_from_confusion(confusion("CE", iters), CLASSES)
                    result = CRFResult(
                        "test", iters, 233, scores, 300.0, 320.0, 16, {}, FINGERPRINT
                    )
                    store_crf(db, job.id, result)
            assert complete(db, job.id, "test:1")


@pytest.fixture(scope="module")
def camvid_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("camvid") / "rmi.db"
    for experiment in ("camvid-table4", "camvid-table4-scratch"):
        args = ["ablate", str(REPO / "experiments.yaml"), "-e", experiment, "--workers", "0"]
        assert run([*args, "--db", str(db)]) == 0
    fill(db)
    return db


def table(rmi: Rmi, db: Path, experiment: str, *args: str) -> str:
    result = rmi("table", "-e", experiment, "-k", "per-class", *args, "--db", db)
    assert result.code == 0, str(result)
    return result.out


def test_the_twelve_class_confusion_is_stored_whole(camvid_db: Path) -> None:
    stored = query(camvid_db, "SELECT confusion_json FROM evaluations WHERE postprocess='none'")
    assert len(stored) == 48  # 24 runs of camvid-table4 and 24 of its twin
    matrices = [np.array(json.loads(text)) for (text,) in stored]
    assert {m.shape for m in matrices} == {(12, 12)}
    names = query(
        camvid_db, "SELECT class_name FROM class_iou GROUP BY class_index ORDER BY class_index"
    )
    assert tuple(n for (n,) in names) == CLASSES


def test_twelve_and_eleven_class_means_from_the_hand_made_confusion(
    camvid_db: Path, rmi: Rmi
) -> None:
    document = json.loads(table(rmi, camvid_db, "camvid-table4", "-f", "json"))
    headers = {c["key"]: c["header"] for c in document["columns"]}
    assert headers["miou"] == "mIoU (%, 12 classes)"
    assert headers["miou_named"] == "mIoU (%, 11 named)"
    assert headers["iou.unlabelled"] == "unlabelled"
    rows = {(r["group"], r["label"]): r for r in document["records"]}
    for group, method in [("DeepLabv3", "RMI"), ("DeepLabv3+", "CE")]:
        iou = 100 * iou_float64(confusion(method, 0))
        row = rows[(group, method)]
        assert row["miou_n"] == 3 and row["miou_std"] == pytest.approx(0.0, abs=1e-9)
        assert row["miou"] == pytest.approx(iou.mean(), abs=1e-6)  # 12 classes
        assert row["miou_named"] == pytest.approx(iou[:11].mean(), abs=1e-6)  # 11 named
        assert row["iou.unlabelled"] == pytest.approx(iou[11], abs=1e-6)
        assert row["miou"] < row["miou_named"]  # "unlabelled" is the hardest class here


def test_reference_rows_sit_beside_rows_computed_the_same_way(camvid_db: Path, rmi: Rmi) -> None:
    text = table(rmi, camvid_db, "camvid-table4", "--reference", "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    labels = [(r["group"], r["label"], r["source"]) for r in rows]
    ce = labels.index(("DeepLabv3", "CE", "ours"))
    assert labels[ce + 1] == ("DeepLabv3", "CE (paper)", "paper")
    paper_ce = rows[ce + 1]
    printed = next(r for r in paper_results()["tables"] if r["id"] == "4")["rows"][0]
    assert float(paper_ce["miou"]) == 58.50  # the paper's 12-class mean, as printed
    assert float(paper_ce["miou_named"]) == pytest.approx(np.mean(printed["class_iou"]), abs=1e-6)
    assert float(paper_ce["miou_named"]) == pytest.approx(61.02, abs=0.005)
    assert paper_ce["iou.unlabelled"] == ""  # not printed by the paper
    markdown = table(rmi, camvid_db, "camvid-table4", "--reference", "-f", "markdown")
    assert "| mIoU (%, 12 classes) | mIoU (%, 11 named) |" in markdown
    assert "the final checkpoint of each run" in markdown
    assert "test every 10 epochs" in markdown and "best of a run" in markdown


def test_from_scratch_twin_says_so_on_every_row_and_has_no_paper_rows(
    camvid_db: Path, rmi: Rmi
) -> None:
    text = table(rmi, camvid_db, "camvid-table4-scratch", "--reference", "-f", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and all(r["source"] == "ours" for r in rows)
    assert all(r["label"].endswith("(from scratch)") for r in rows)
    assert {r["group"] for r in rows} == {"DeepLabv3 (from scratch)", "DeepLabv3+ (from scratch)"}
    markdown = table(rmi, camvid_db, "camvid-table4-scratch", "--reference", "-f", "markdown")
    assert "No paper rows: every row here was trained from scratch" in markdown
    assert "| DeepLabv3 (from scratch) | CE (from scratch) |" in markdown
