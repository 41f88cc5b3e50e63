"""The runner as a notebook calls it: no CLI, messages through `logging`, records back."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
import torch

from rmi_cli import runner
from rmi_cli.errors import ConfigError, DataError, RunFailed, UserError

MANIFEST = """\
version: 1
experiments:
  nb:
    defaults:
      model: {name: deeplabv3, backbone: resnet18, output_stride: 16}
      data:
        name: synthetic
        synthetic: {height: 32, width: 48, train_images: 4, val_images: 3, test_images: 2}
        crop_size: 32
        workers: 0
      train: {iterations: 2, batch_size: 2, lr: 0.01, warmup_iters: 1, device: cpu,
              checkpoint_every: 100, log_every: 1}
      eval: {warmup_images: 1}
    runs:
      ce: {loss: {name: ce}}
    tables:
      - {kind: methods}
"""


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def test_queue_run_and_tabulate_without_the_cli(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manifest = tmp_path / "experiments.yaml"
    manifest.write_text(MANIFEST)
    plan = runner.plan_experiment(manifest, "nb", ["train.iterations=3"])
    assert [run.config.train.iterations for run in plan.runs] == [3]
    with runner.open_database(tmp_path / "nb.db") as database, caplog.at_level(logging.INFO):
        queued = runner.queue_experiment(database, plan)
        assert queued.names("new") == ["ce"]
        report = runner.run_queue(database, experiment="nb", runs_dir=tmp_path / "runs")
        report.check()
        assert report.done == ["nb/ce"]
        tables = runner.tables(database, "nb")
        detail = runner.run_detail(database, "nb/ce")
        assert runner.find_run(database, "ce").status == "done"
        curves = runner.draw_curves(database, "nb", output=tmp_path / "curves.png")
        page = runner.write_report(database, "nb", tmp_path / "report", qualitative=False)
    assert [p.name for p in curves] == ["curves.png", "curves.svg"]
    assert "nb: methods on val" in page.read_text()
    assert [table.kind for table in tables] == ["methods"]
    assert detail["status"] == "done" and detail["evaluations"][0]["num_images"] == 3
    assert any("nb/ce: val mIoU" in record.getMessage() for record in caplog.records)
    checkpoint = tmp_path / "runs" / plan.runs[0].config_hash / "checkpoints" / "last.pt"
    assert checkpoint.is_file()
    with sqlite3.connect(tmp_path / "nb.db") as con:
        assert con.execute("select status from runs").fetchall() == [("done",)]


def test_train_checks_the_data_before_it_creates_a_database(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    overrides = ["data.name=folder", f"data.root={missing}", "train.iterations=3"]
    plan = runner.single_run_plan(None, None, None, overrides)
    with pytest.raises(DataError, match="nowhere"):
        runner.train(tmp_path / "never.db", plan)
    assert not (tmp_path / "never.db").exists()


def test_lookups_raise_user_errors(tmp_path: Path) -> None:
    with (
        runner.open_database(tmp_path / "x.db") as database,
        pytest.raises(UserError, match="no run"),
    ):
        runner.find_run(database, "nope")


def test_a_shape_bug_inside_a_loss_fails_once_with_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not the user's bad input, but the same code on the same input fails the same way every
    time: the job fails at once (no retry), its traceback stored for the bug report."""
    from rmi_cli.models.deeplab import SegmentationModel

    forward = SegmentationModel.forward
    monkeypatch.setattr(SegmentationModel, "forward", lambda self, x: forward(self, x)[:, :-1])
    manifest = tmp_path / "experiments.yaml"
    manifest.write_text(MANIFEST)
    plan = runner.plan_experiment(manifest, "nb")
    with runner.open_database(tmp_path / "nb.db") as database:
        runner.queue_experiment(database, plan)
        report = runner.run_queue(database, runs_dir=tmp_path / "runs")
        assert (report.failed, report.attempts) == (["nb/ce"], 1)
        with pytest.raises(RunFailed, match=r"^1 job\(s\) failed: nb/ce$"):
            report.check()
        detail = runner.run_detail(database, "nb/ce")
    assert detail["status"] == "failed" and detail["attempts"] == 1
    assert "Traceback" in detail["error"] and "LossInputError: num_classes is 10" in detail["error"]


@pytest.mark.parametrize("failures", [1, 3])
def test_a_failure_that_may_pass_is_retried_and_counted_once(
    failures: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk error may not happen again: the job is retried (up to its 3 attempts). The report
    names each job once, by its last outcome: the summary said "3 job(s) failed: X, X, X"."""
    from rmi_cli.models.deeplab import SegmentationModel

    forward, calls = SegmentationModel.forward, iter(range(1000))

    def flaky(self: SegmentationModel, x: torch.Tensor) -> torch.Tensor:
        if next(calls) < failures:
            raise OSError(5, "Input/output error")
        return forward(self, x)

    monkeypatch.setattr(SegmentationModel, "forward", flaky)
    manifest = tmp_path / "experiments.yaml"
    manifest.write_text(MANIFEST)
    with runner.open_database(tmp_path / "nb.db") as database:
        runner.queue_experiment(database, runner.plan_experiment(manifest, "nb"))
        report = runner.run_queue(database, runs_dir=tmp_path / "runs")
        detail = runner.run_detail(database, "nb/ce")
    assert report.attempts == min(failures + 1, 3)
    if failures == 1:
        assert (report.done, report.failed) == (["nb/ce"], [])
        assert (detail["status"], detail["attempts"]) == ("done", 2)
    else:
        assert (report.done, report.failed) == ([], ["nb/ce"])
        assert (detail["status"], detail["attempts"]) == ("failed", 3)
        assert "OSError: [Errno 5] Input/output error" in detail["error"]


def test_weights_it_cannot_read_refuse_local_runs_and_warn_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The check lives in the runner, not the CLI: a notebook gets the same refusal (nothing
    written) and the same warnings, each naming the experiment's from-scratch twin."""
    monkeypatch.delenv("RMI_TEST_NO_SUCH_WEIGHTS", raising=False)
    manifest = tmp_path / "experiments.yaml"
    weights = 'output_stride: 16,\n               pretrained: "${RMI_TEST_NO_SUCH_WEIGHTS}"}'
    twin = "  nb-scratch:\n    extends: nb\n    defaults:\n      model: {pretrained: null}\n"
    manifest.write_text(MANIFEST.replace("output_stride: 16}", weights) + twin)
    plan = runner.plan_experiment(manifest, "nb")
    assert plan.scratch_twins == ("nb-scratch",)
    assert runner.plan_experiment(manifest, "nb-scratch").scratch_twins == ()
    (line,) = runner.weights_warnings(plan)
    assert line.startswith("model.pretrained of 1 run of nb reads ${RMI_TEST_NO_SUCH_WEIGHTS}")
    assert line.endswith(f"rmi ablate {manifest} -e nb-scratch")
    assert runner.dry_run(None, plan).weights_warnings == (line,)
    with pytest.raises(ConfigError, match="--workers 0 only queues them"):
        runner.ablate(tmp_path / "never.db", plan, workers=1)
    assert not (tmp_path / "never.db").exists()
    with caplog.at_level(logging.INFO):
        outcome = runner.ablate(tmp_path / "nb.db", plan, workers=0)
    assert outcome.report is None and outcome.counts["queued"] == 1
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warned] == [line]
