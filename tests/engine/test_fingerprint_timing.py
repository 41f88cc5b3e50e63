"""Environment fingerprint, the timing summary, peak-memory helpers and the stop signals."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from rmi_cli.engine import fingerprint
from rmi_cli.engine.signals import stop_on_signals
from rmi_cli.engine.timing import (
    describe_sizes,
    peak_memory_mb,
    resolve_precision,
    summarize_timing,
    timed,
)

CPU = torch.device("cpu")


def test_fingerprint_on_cpu_without_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # neither nvidia-smi nor git can be found
    result = fingerprint.environment_fingerprint("cpu")
    assert result.device == "cpu"
    assert result.driver is None and result.git_commit is None
    assert result.torch == torch.__version__
    assert result.num_threads == torch.get_num_threads()
    assert result.rmi_version


def test_git_commit_of_this_checkout() -> None:
    commit = fingerprint.git_commit(fingerprint.repo_root())
    if commit is None:
        pytest.skip("not a git checkout (e.g. a copied tree)")
    assert len(commit.removesuffix("+dirty")) == 40


def test_git_commit_outside_a_checkout(tmp_path: Path) -> None:
    assert fingerprint.git_commit(tmp_path) is None


def test_summary_and_protocol_sentence() -> None:
    timing = summarize_timing(
        [4.0, 1.0, 3.0, 2.0, 10.0],
        warmup_images=10,
        sizes=[(360, 480)] * 5,
        device=CPU,
        precision="fp32",
    )
    assert (timing.median_ms, timing.mean_ms) == (3.0, 4.0)
    assert timing.p90_ms == pytest.approx(7.6)
    assert (timing.images, timing.warmup_images, timing.batch_size) == (5, 10, 1)
    assert timing.input_size == "360x480"
    assert timing.precision == "fp32"
    assert timing.protocol == "forward pass only, wall clock, data loading excluded"


def test_sizes_and_precision() -> None:
    assert describe_sizes([(375, 500), (500, 333)]) == "variable (max 500x500)"
    assert resolve_precision("auto", CPU) == "fp32"
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
    assert resolve_precision("fp32", torch.device("cuda")) == "fp32"
    assert peak_memory_mb(CPU) is None
    value, ms = timed(lambda: 42, CPU)
    assert value == 42 and ms >= 0


def test_sigterm_becomes_a_stop_request() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals() as should_stop:
        assert not should_stop()
        os.kill(os.getpid(), signal.SIGTERM)
        assert should_stop()
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_peak_memory_on_cuda() -> None:
    from rmi_cli.engine.timing import reset_peak_memory

    device = torch.device("cuda")
    reset_peak_memory(device)
    block = torch.empty(64 * 2**20, dtype=torch.uint8, device=device)
    assert peak_memory_mb(device) >= 64
    del block
    name = fingerprint.environment_fingerprint(device).device
    assert name == torch.cuda.get_device_name(device)
