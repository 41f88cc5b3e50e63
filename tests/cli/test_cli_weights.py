"""`rmi ablate` and weights it cannot read: the dry run warns before anything is queued and
names the from-scratch twin; runs that would start here are refused in one line; the dry run
lists the settings each run trains with (the released recipe for the paper's experiments)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_kit import REPO, Rmi

MANIFEST = REPO / "experiments.yaml"
VARIABLE = "RMI_RESNET101_DEEP_STEM"


@pytest.fixture
def no_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)


def test_dry_run_warns_and_names_the_scratch_twin(
    no_weights: None, rmi: Rmi, tmp_path: Path
) -> None:
    db = tmp_path / "rmi.db"
    result = rmi("ablate", MANIFEST, "-e", "camvid-table4", "--dry-run", "--db", db)
    assert result.code == 0, str(result)
    first, *rest = result.err.splitlines()
    assert first == (
        "warning: model.pretrained of 24 runs of camvid-table4 reads ${RMI_RESNET101_DEEP_STEM}, "
        "which is not set on this machine: they fail where the file cannot be read. Set it to "
        "the weights file on the machines that run them, or train the same grid from random "
        f"initialisation: rmi ablate {MANIFEST} -e camvid-table4-scratch"
    )
    assert any(line.endswith("Nothing was queued (dry run).") for line in rest)
    assert not db.exists()
    twin = rmi("ablate", MANIFEST, "-e", "camvid-table4-scratch", "--dry-run", "--db", db)
    assert twin.code == 0 and "warning" not in twin.err, str(twin)


@pytest.mark.parametrize("experiment", ["voc-table1", "voc-table3a"])
def test_every_voc_table_has_its_twin(no_weights: None, rmi: Rmi, experiment: str) -> None:
    result = rmi("ablate", MANIFEST, "-e", experiment, "--dry-run", "--db", "none.db")
    assert result.code == 0, str(result)
    assert result.err.startswith("warning: model.pretrained of ")
    assert f"-e {experiment}-scratch\n" in result.err


def test_no_warning_when_the_weights_file_is_there(
    monkeypatch: pytest.MonkeyPatch, rmi: Rmi, tmp_path: Path
) -> None:
    weights = tmp_path / "resnet101-deep-stem.pth"
    weights.write_bytes(b"not read by a dry run")
    monkeypatch.setenv(VARIABLE, str(weights))
    result = rmi("ablate", MANIFEST, "-e", "camvid-table4", "--dry-run", "--db", "none.db")
    assert result.code == 0 and "warning" not in result.err, str(result)
    monkeypatch.setenv(VARIABLE, str(tmp_path / "elsewhere.pth"))
    result = rmi("ablate", MANIFEST, "-e", "camvid-table4", "--dry-run", "--db", "none.db")
    assert f"is {tmp_path / 'elsewhere.pth'}, which does not exist on this machine" in result.err


def test_queueing_for_other_machines_warns_and_queues(
    no_weights: None, rmi: Rmi, tmp_path: Path
) -> None:
    db = tmp_path / "rmi.db"
    result = rmi("ablate", MANIFEST, "-e", "voc-table2", "--workers", "0", "--db", db)
    assert result.code == 0, str(result)
    assert result.err.startswith("warning: model.pretrained of 4 runs of voc-table2")
    assert "voc-table2: 6 queued" in result.err  # 4 runs and 2 CRF steps


def test_runs_starting_here_without_weights_are_refused(
    no_weights: None, rmi: Rmi, tmp_path: Path
) -> None:
    db = tmp_path / "rmi.db"
    result = rmi("ablate", MANIFEST, "-e", "voc-table2", "--db", db)
    assert result.code == 2, str(result)
    assert result.out == ""
    assert result.err.startswith("error: model.pretrained of 4 runs of voc-table2 reads ")
    assert result.err.endswith(
        "-e voc-table2-scratch (--workers 0 only queues them, for other machines)\n"
    )
    assert len(result.err.splitlines()) == 1 and not db.exists()


def test_dry_run_lists_the_released_recipe(no_weights: None, rmi: Rmi) -> None:
    camvid = rmi("ablate", MANIFEST, "-e", "camvid-table4", "--dry-run", "--db", "none.db")
    settings = camvid.out[camvid.out.index("settings: ") :].replace("\n", " ")
    for expected in (
        "model.deep_stem=true", "model.layout=released", "model.bn_momentum=0.05",
        "model.output_stride=16", "data.void=class", "data.crop_size=481",
        "data.scale_range=[0.75, 1.25]", "train.iterations=5800", "train.batch_size=16",
        "train.lr=0.025", "train.warmup_iters=300", "head_lr_mult=10.0;",
    ):  # fmt: skip
        assert expected in settings, expected
    voc = rmi("ablate", MANIFEST, "-e", "voc-table1", "--dry-run", "--db", "none.db")
    settings = voc.out[voc.out.index("settings: ") :].replace("\n", " ")
    assert "train.iterations=30406" in settings and "data.void=ignore" in settings
    assert "head_lr_mult=10.0 (DeepLabv3), 5.0 (DeepLabv3+)" in settings
