"""What the training loop keeps besides the model (`RunParts`, `LoopState`), and what it reads
back from the device, reports and saves: the bookkeeping of `train.py`, apart from its steps.

Data-parallel: every rank calls these at the same iterations (they hold collectives): losses and
fallback counts are summed over the ranks, the ranks vote on stopping, every rank's RNG state
goes into the checkpoint, and only rank 0 writes it and reports.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rmi_cli.config import RunConfig
from rmi_cli.engine import checkpoint as ckpt
from rmi_cli.engine.distributed import Ranks
from rmi_cli.engine.fingerprint import environment_fingerprint
from rmi_cli.engine.progress import TrainClock, TrainProgress
from rmi_cli.engine.rng import capture_rng_state
from rmi_cli.engine.schedule import schedule_from_config
from rmi_cli.errors import Interrupted, RunFailed
from rmi_cli.losses import LOCAL, BatchShare
from rmi_cli.records import TrainMetrics, TrainResult
from rmi_cli.run_folder import RunFolder


@dataclass
class RunParts:
    """Everything built once for a run (benchmarks build one to time the bare step)."""

    config: RunConfig
    workdir: Path
    device: torch.device
    precision: str  # "bf16" or "fp32"
    model: nn.Module  # the module whose weights are saved
    forward: Callable[[torch.Tensor], torch.Tensor]  # the model, or its compiled version
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    dataset: Any
    signature: dict[str, Any]
    ranks: Ranks | None = None
    share: BatchShare = LOCAL

    @property
    def is_lead(self) -> bool:
        """Whether this process writes checkpoints and reports (always, when it runs alone)."""
        return self.ranks is None or self.ranks.is_lead

    @property
    def world_size(self) -> int:
        return 1 if self.ranks is None else self.ranks.world_size


@dataclass
class LoopState:
    iteration: int = 0  # optimiser steps done
    window: list[float] = field(default_factory=list)  # losses since the last report
    last_loss: float = math.nan
    fallbacks_before: int = 0  # RMI fallbacks counted by earlier processes of this run
    resumed_from: int | None = None
    pending: list[torch.Tensor] = field(default_factory=list)  # losses still on the device


def flush(run: RunParts, state: LoopState) -> None:
    """Read the pending losses back (one device sync) and fail on the first non-finite one."""
    if not state.pending:
        return
    losses = torch.stack(state.pending).float()
    if run.ranks is not None:  # each rank holds its part of every step's global-batch loss
        losses = run.ranks.sum_device(losses)
    values = losses.cpu().tolist()
    first = state.iteration - len(values) + 1
    state.pending.clear()
    for offset, value in enumerate(values):
        if not math.isfinite(value):
            raise RunFailed(
                f"training diverged: the loss is {value} at iteration {first + offset} of "
                f"{run.config.train.iterations}; lower train.lr or check the data and the loss "
                f"options (checkpoints before it are kept in "
                f"{ckpt.checkpoint_dir(run.workdir)})"
            )
    state.window.extend(values)
    state.last_loss = values[-1]


def report(
    run: RunParts,
    state: LoopState,
    clock: TrainClock,
    bar: TrainProgress,
    on_metrics: Callable[[TrainMetrics], None] | None,
) -> None:
    flush(run, state)
    if not state.window:
        return
    train = run.config.train
    metrics = TrainMetrics(
        iteration=state.iteration,
        loss=math.fsum(state.window) / len(state.window),
        lr=schedule_from_config(train, state.iteration - 1),
        images_per_s=clock.lap(state.iteration, train.batch_size),
        elapsed_s=clock.elapsed(),
        rmi_fallbacks=total_fallbacks(run, state),
    )
    state.window.clear()
    bar.report(metrics, eta_s=clock.eta(state.iteration, train.iterations))
    if on_metrics is not None and run.is_lead:
        on_metrics(metrics)


def total_fallbacks(run: RunParts, state: LoopState) -> int:
    counted = int(getattr(run.loss_fn, "fallback_count", 0))
    if run.ranks is not None:
        counted = round(run.ranks.sum_host(counted))
    return state.fallbacks_before + counted


def stop_voted(run: RunParts, should_stop: Callable[[], bool] | None) -> bool:
    """Whether to checkpoint and stop now. The ranks vote every step so that all of them stop
    at the same one; a rank told to give the run up (its job was taken over) makes all of them
    give it up, without a checkpoint."""
    give_up: Interrupted | None = None
    try:
        vote = int(should_stop is not None and should_stop())
    except Interrupted as exc:
        vote, give_up = 2, exc
    if run.ranks is not None:
        vote = run.ranks.agree(vote)
    if vote == 2:
        raise give_up or Interrupted(
            "rank 0 gave this run up (its job was taken over); stopped without a checkpoint"
        )
    return vote == 1


def save(run: RunParts, state: LoopState) -> Path:
    flush(run, state)
    fallbacks = total_fallbacks(run, state)
    rng = capture_rng_state()
    every_rng = run.ranks.gather(rng) if run.ranks is not None else None
    final = ckpt.checkpoint_dir(run.workdir) / f"iter-{state.iteration}.pt"
    if not run.is_lead:
        return final
    return ckpt.save_checkpoint(
        ckpt.checkpoint_dir(run.workdir),
        {
            "iteration": state.iteration,
            "config_hash": run.config.canonical_hash(),
            "signature": run.signature,
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "rng": rng,
            "rng_ranks": every_rng or [],
            "world_size": run.world_size,
            "loop": {
                "window": list(state.window),
                "last_loss": state.last_loss,
                "rmi_fallbacks": fallbacks,
            },
        },
    )


def stop(run: RunParts, state: LoopState) -> None:
    path = save(run, state)
    raise Interrupted(
        f"run stopped at iteration {state.iteration} of {run.config.train.iterations}; "
        f"checkpoint saved to {path}; run it again with the same work directory "
        f"({run.workdir}) to resume from there"
    )


def result(
    run: RunParts,
    state: LoopState,
    *,
    train_time_s: float,
    images_per_s: float,
    peak_mb: float | None,
) -> TrainResult:
    final = ckpt.checkpoint_dir(run.workdir) / f"iter-{state.iteration}.pt"
    if not final.is_file():
        final = RunFolder(run.workdir).last_checkpoint
    return TrainResult(
        checkpoint=str(final),
        iterations=state.iteration,
        final_loss=state.last_loss,
        train_time_s=train_time_s,
        images_per_s=images_per_s,
        peak_train_memory_mb=peak_mb,
        rmi_fallbacks=total_fallbacks(run, state),
        resumed_from=state.resumed_from,
        fingerprint=environment_fingerprint(run.device),
        world_size=run.world_size,
        batch_per_rank=run.config.train.batch_size // run.world_size,
    )
