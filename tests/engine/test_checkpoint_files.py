"""Checkpoints: atomic writes, pruning, safe loading and one-line errors; RNG round trips."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rmi_cli import atomic
from rmi_cli.config import ModelConfig
from rmi_cli.engine import checkpoint as ckpt
from rmi_cli.engine.rng import capture_rng_state, restore_rng_state, seed_everything
from rmi_cli.errors import CheckpointError

SIGNATURE = ckpt.model_signature(ModelConfig(backbone="resnet18"), 11)


def _state(iteration: int, *, signature: dict = SIGNATURE, config_hash: str = "abc") -> dict:
    model = nn.Linear(3, 2)
    nn.init.constant_(model.weight, float(iteration))
    return {
        "iteration": iteration,
        "config_hash": config_hash,
        "signature": signature,
        "model": model.state_dict(),
        "rng": capture_rng_state(),
    }


def test_save_writes_iter_and_last_and_keeps_the_newest(tmp_path: Path) -> None:
    for iteration in (10, 20, 30, 40):
        path = ckpt.save_checkpoint(tmp_path, _state(iteration), keep=2)
        assert path == tmp_path / f"iter-{iteration}.pt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iter-30.pt", "iter-40.pt", "last.pt"]
    state = ckpt.load_checkpoint(tmp_path / "last.pt", signature=SIGNATURE, config_hash="abc")
    assert state["iteration"] == 40
    assert torch.equal(state["model"]["weight"], torch.full((2, 3), 40.0))
    assert ckpt.latest_checkpoint(tmp_path.parent / "nowhere") is None


def test_a_crash_mid_write_leaves_the_previous_last_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt.save_checkpoint(tmp_path, _state(1))

    def crash(descriptor: int) -> None:
        raise OSError("disk full (simulated)")

    # The temporary file has been written when fsync runs; the crash comes before the rename.
    monkeypatch.setattr(atomic.os, "fsync", crash)
    with pytest.raises(OSError, match="simulated"):
        ckpt.save_checkpoint(tmp_path, _state(2))
    monkeypatch.undo()
    assert ckpt.load_checkpoint(tmp_path / "last.pt")["iteration"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iter-1.pt", "last.pt"]


def test_last_is_the_iter_file_written_once(tmp_path: Path) -> None:
    ckpt.save_checkpoint(tmp_path, _state(5))
    assert (tmp_path / "last.pt").samefile(tmp_path / "iter-5.pt")
    ckpt.save_checkpoint(tmp_path, _state(6), keep=1)  # prunes iter-5.pt; last.pt is iter-6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iter-6.pt", "last.pt"]
    assert ckpt.load_checkpoint(tmp_path / "last.pt")["iteration"] == 6


def test_without_hard_links_last_is_a_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(source: object, target: object) -> None:
        raise OSError("hard links not supported (simulated)")

    monkeypatch.setattr(atomic.os, "link", no_links)
    ckpt.save_checkpoint(tmp_path, _state(3))
    assert not (tmp_path / "last.pt").samefile(tmp_path / "iter-3.pt")
    assert (tmp_path / "last.pt").read_bytes() == (tmp_path / "iter-3.pt").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iter-3.pt", "last.pt"]


def test_temporary_files_of_a_killed_writer_are_removed(tmp_path: Path) -> None:
    stale = [".last.pt.k3x9_q.tmp", ".iter-40.pt.abc.tmp", ".last.pt.123.link.tmp"]
    for name in stale:
        (tmp_path / name).write_bytes(b"half a checkpoint")
    (tmp_path / "notes.tmp").write_text("not ours")
    ckpt.save_checkpoint(tmp_path, _state(50))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iter-50.pt", "last.pt", "notes.tmp"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"nope\.pt does not exist") as info:
        ckpt.load_checkpoint(tmp_path / "nope.pt")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("content", [b"", b"not a zip file at all", b"PK\x03\x04 truncated"])
def test_corrupt_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="corrupt") as info:
        ckpt.load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_truncated_checkpoint_is_corrupt(tmp_path: Path) -> None:
    path = ckpt.save_checkpoint(tmp_path, _state(3))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt"):
        ckpt.load_checkpoint(path)


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"iteration": 1, "payload": Path("/etc")}, path)
    with pytest.raises(CheckpointError, match="corrupt"):
        ckpt.load_checkpoint(path)


def test_a_bare_state_dict_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save(nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(CheckpointError, match="not an rmi training checkpoint"):
        ckpt.load_checkpoint(path)


def test_foreign_model_names_expected_and_found(tmp_path: Path) -> None:
    other = ckpt.model_signature(ModelConfig(name="deeplabv3plus", backbone="resnet101"), 21)
    path = ckpt.save_checkpoint(tmp_path, _state(5, signature=other))
    with pytest.raises(CheckpointError) as info:
        ckpt.load_checkpoint(path, signature=SIGNATURE)
    message = str(info.value)
    assert "expected weights for deeplabv3/resnet18 with 11 classes" in message
    assert "found deeplabv3plus/resnet101 with 21 classes" in message


def test_foreign_config(tmp_path: Path) -> None:
    path = ckpt.save_checkpoint(tmp_path, _state(5, config_hash="other"))
    with pytest.raises(CheckpointError, match="expected a run with config hash abc, found other"):
        ckpt.load_checkpoint(path, signature=SIGNATURE, config_hash="abc")


def test_weights_that_do_not_fit_the_model(tmp_path: Path) -> None:
    state = ckpt.load_checkpoint(ckpt.save_checkpoint(tmp_path, _state(1)))
    with pytest.raises(CheckpointError, match="does not fit the model Linear"):
        ckpt.load_model_weights(nn.Linear(4, 2), state, tmp_path / "last.pt")


def test_rng_states_round_trip_through_a_checkpoint(tmp_path: Path) -> None:
    seed_everything(7)
    random.random(), np.random.standard_normal(), torch.rand(3)  # advance every generator
    path = ckpt.save_checkpoint(tmp_path, _state(1))
    expected = (random.random(), np.random.standard_normal(3), torch.rand(3))
    seed_everything(123)
    restore_rng_state(ckpt.load_checkpoint(path)["rng"])
    assert random.random() == expected[0]
    np.testing.assert_array_equal(np.random.standard_normal(3), expected[1])
    assert torch.equal(torch.rand(3), expected[2])
