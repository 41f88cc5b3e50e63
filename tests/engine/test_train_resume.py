"""train_run on the CPU: exact resume, stop requests, divergence, results and files."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from rmi_cli.config import RunConfig
from rmi_cli.engine import train as train_module
from rmi_cli.engine import train_run
from rmi_cli.errors import CheckpointError, Interrupted, RunFailed
from rmi_cli.records import TrainMetrics


def _metrics_key(metrics: list[TrainMetrics]) -> list[tuple[int, float, float, int]]:
    """What must agree between runs (timings naturally differ)."""
    return [(m.iteration, m.loss, m.lr, m.rmi_fallbacks) for m in metrics]


def _checkpoint_tensors(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, weights_only=True)
    tensors = {f"model.{k}": v for k, v in state["model"].items()}
    for index, entry in state["optimizer"]["state"].items():
        tensors |= {f"optim.{index}.{k}": v for k, v in entry.items() if torch.is_tensor(v)}
    return tensors


def _stop_after(polls: int) -> Callable[[], bool]:
    calls = iter(range(10**6))
    return lambda: next(calls) >= polls


Reference = tuple[Path, list[TrainMetrics]]


@pytest.fixture(scope="module")
def reference_runs(
    tmp_path_factory: pytest.TempPathFactory, tiny_config: Callable[..., RunConfig]
) -> Callable[[str], Reference]:
    """Uninterrupted 6-iteration runs, one per loss, trained on first use."""
    runs: dict[str, Reference] = {}

    def get(loss: str) -> Reference:
        if loss not in runs:
            workdir = tmp_path_factory.mktemp(f"straight-{loss}")
            metrics: list[TrainMetrics] = []
            config = tiny_config(loss=loss)
            result = train_run(config, workdir=workdir, on_metrics=metrics.append, progress=False)
            assert result.iterations == 6 and result.resumed_from is None
            runs[loss] = workdir, metrics
        return runs[loss]

    return get


@pytest.fixture
def straight(reference_runs: Callable[[str], Reference]) -> Reference:
    return reference_runs("ce")


@pytest.mark.parametrize("loss", ["ce", "rmi"])
def test_resume_is_bit_exact(
    loss: str,
    reference_runs: Callable[[str], Reference],
    tmp_path: Path,
    tiny_config: Callable[..., RunConfig],
) -> None:
    reference_dir, reference_metrics = reference_runs(loss)
    metrics: list[TrainMetrics] = []
    # Stop after 4 steps: between checkpoints (3, 6) and reports (2, 4, 6) on purpose.
    with pytest.raises(Interrupted) as info:
        train_run(
            tiny_config(loss=loss),
            workdir=tmp_path,
            on_metrics=metrics.append,
            should_stop=_stop_after(4),
            progress=False,
        )
    assert "stopped at iteration 4 of 6" in str(info.value)
    assert str(tmp_path / "checkpoints" / "iter-4.pt") in str(info.value)
    torch.manual_seed(12345)  # a fresh process would not share the generators' state either
    result = train_run(
        tiny_config(loss=loss), workdir=tmp_path, on_metrics=metrics.append, progress=False
    )
    assert result.resumed_from == 4 and result.iterations == 6
    assert _metrics_key(metrics) == _metrics_key(reference_metrics)
    expected = _checkpoint_tensors(reference_dir / "checkpoints" / "last.pt")
    found = _checkpoint_tensors(Path(result.checkpoint))
    assert expected.keys() == found.keys()
    unequal = [name for name in expected if not torch.equal(expected[name], found[name])]
    assert not unequal, f"tensors differ after resume: {unequal[:5]}"


@pytest.mark.parametrize("damage", ["last.pt deleted", "last.pt damaged"])
def test_a_run_resumes_from_its_newest_readable_checkpoint(
    damage: str,
    straight: Reference,
    tmp_path: Path,
    tiny_config: Callable[..., RunConfig],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The corrupt-checkpoint message said "delete it and resume from an older iter-<N>.pt",
    but resume read only last.pt: the run restarted from iteration 0. Deleting last.pt now
    resumes from the newest iter file; a damaged last.pt (and the iter-4.pt it is a hard link
    to) is skipped with a note, back to iter-3.pt. Either way the run equals the straight one."""
    metrics: list[TrainMetrics] = []
    with pytest.raises(Interrupted):
        train_run(tiny_config(), workdir=tmp_path, on_metrics=metrics.append,
                  should_stop=_stop_after(4), progress=False)  # fmt: skip
    last = tmp_path / "checkpoints" / "last.pt"
    if damage == "last.pt deleted":
        last.unlink()
    else:
        with last.open("r+b") as handle:  # in place: the hard-linked iter-4.pt is hit too
            handle.write(b"\0" * 4096)
    torch.manual_seed(12345)
    result = train_run(tiny_config(), workdir=tmp_path, on_metrics=metrics.append, progress=False)
    assert result.resumed_from == (4 if damage == "last.pt deleted" else 3)
    # Iteration 4 is reported again after a resume from 3, with the same numbers (the
    # database keeps one row per iteration).
    by_iteration = {key[0]: key for key in _metrics_key(metrics)}
    assert len(set(_metrics_key(metrics))) == len(by_iteration)
    assert list(by_iteration.values()) == _metrics_key(straight[1])
    if damage == "last.pt damaged":
        (record,) = [r for r in caplog.records if r.name == "rmi_cli.engine.train"]
        assert record.levelname == "WARNING"
        assert record.getMessage().startswith(f"checkpoint {last} is corrupt or not a PyTorch")
        assert record.getMessage().endswith("; resuming from iter-3.pt (iteration 3)")


def test_a_run_whose_every_checkpoint_is_unreadable_is_refused(
    tmp_path: Path, tiny_config: Callable[..., RunConfig]
) -> None:
    (tmp_path / "checkpoints").mkdir()
    for name in ("iter-3.pt", "last.pt"):
        (tmp_path / "checkpoints" / name).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"no checkpoint in .*checkpoints can be read"):
        train_run(tiny_config(), workdir=tmp_path, progress=False)


def test_result_files_and_metrics(
    straight: Reference, tiny_config: Callable[..., RunConfig]
) -> None:
    workdir, metrics = straight
    assert [m.iteration for m in metrics] == [2, 4, 6]
    assert all(math.isfinite(m.loss) and m.images_per_s > 0 for m in metrics)
    assert metrics[0].lr == pytest.approx(1e-4 + 0.5 * (0.01 - 1e-4))  # step 1 of the warm-up
    saved = json.loads((workdir / "config.json").read_text())
    assert saved == tiny_config().to_json_dict()
    names = sorted(p.name for p in (workdir / "checkpoints").iterdir())
    assert names == ["iter-3.pt", "iter-6.pt", "last.pt"]


def test_a_finished_run_is_not_trained_again(
    straight: Reference, tiny_config: Callable[..., RunConfig]
) -> None:
    workdir, metrics = straight
    before = (workdir / "checkpoints" / "last.pt").stat().st_mtime_ns
    result = train_run(tiny_config(), workdir=workdir, progress=False)
    assert result.resumed_from == 6 and result.train_time_s == 0.0
    assert result.final_loss == pytest.approx(metrics[-1].loss, abs=1.0)
    assert (workdir / "checkpoints" / "last.pt").stat().st_mtime_ns == before


def test_a_workdir_of_another_run_is_refused(
    straight: Reference, tiny_config: Callable[..., RunConfig]
) -> None:
    with pytest.raises(CheckpointError, match="config hash"):
        train_run(tiny_config(lr=0.5), workdir=straight[0], progress=False)


def test_stop_before_the_first_step(tmp_path: Path, tiny_config: Callable[..., RunConfig]) -> None:
    with pytest.raises(Interrupted, match="stopped at iteration 0 of 6"):
        train_run(tiny_config(), workdir=tmp_path, should_stop=lambda: True, progress=False)
    assert (tmp_path / "checkpoints" / "iter-0.pt").is_file()


class _DivergesAtStep3(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(
        self, logits: torch.Tensor, labels: torch.Tensor, *, progress: float
    ) -> torch.Tensor:
        self.calls += 1
        loss = self.inner(logits, labels, progress=progress)
        return loss * math.nan if self.calls == 3 else loss


def test_a_non_finite_loss_names_the_iteration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_config: Callable[..., RunConfig]
) -> None:
    real = train_module.build_loss
    monkeypatch.setattr(train_module, "build_loss", lambda *a, **k: _DivergesAtStep3(real(*a, **k)))
    with pytest.raises(RunFailed, match="loss is nan at iteration 3 of 6"):
        train_run(tiny_config(checkpoint_every=2), workdir=tmp_path, progress=False)
    # The checkpoint of iteration 2 was written before the divergence, none after it.
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["iter-2.pt", "last.pt"]


def test_plain_progress_lines_go_to_stderr(
    tmp_path: Path,
    tiny_config: Callable[..., RunConfig],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    train_run(tiny_config(iterations=3, warmup_iters=0), workdir=tmp_path, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert [line.split()[1] for line in lines] == ["2/3", "3/3"]
    assert all(" loss " in line and " img/s ETA " in line for line in lines)
