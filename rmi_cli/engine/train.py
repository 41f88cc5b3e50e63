"""The training loop: one `RunConfig` in, a trained checkpoint and a `TrainResult` out.

Resume is exact: a checkpoint holds the model, the optimiser, the number of steps done, every
RNG state and the loop's small state (the loss window of the next report, the RMI fallback
count), and the data stream's batch t is a pure function of (seed, t). So a run stopped at step
k and resumed in a fresh process computes, on the CPU, bit for bit what the uninterrupted run
computes.

Losses are read back from the device only at report, checkpoint and stop points (one sync
each), never every step, so the CPU keeps queueing kernels ahead of a CUDA device.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rmi_cli.atomic import atomic_write_json
from rmi_cli.config import RunConfig, loss_options
from rmi_cli.data import build_dataset, build_train_stream
from rmi_cli.engine import checkpoint as ckpt
from rmi_cli.engine.fingerprint import environment_fingerprint
from rmi_cli.engine.optim import build_optimizer, set_lr
from rmi_cli.engine.progress import TrainClock, TrainProgress
from rmi_cli.engine.rng import capture_rng_state, restore_rng_state, seed_everything
from rmi_cli.engine.runtime import numerics, place_model, resolve_device, to_input
from rmi_cli.engine.schedule import schedule_from_config
from rmi_cli.engine.timing import autocast, peak_memory_mb, reset_peak_memory, resolve_precision
from rmi_cli.errors import CheckpointError, Interrupted, RunFailed
from rmi_cli.losses import build_loss
from rmi_cli.models import build_model
from rmi_cli.records import TrainMetrics, TrainResult
from rmi_cli.run_folder import RunFolder

Batches = Iterator[tuple[torch.Tensor, torch.Tensor]]


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


@dataclass
class _LoopState:
    iteration: int = 0  # optimiser steps done
    window: list[float] = field(default_factory=list)  # losses since the last report
    last_loss: float = math.nan
    fallbacks_before: int = 0  # RMI fallbacks counted by earlier processes of this run
    resumed_from: int | None = None
    pending: list[torch.Tensor] = field(default_factory=list)  # losses still on the device


def train_run(
    config: RunConfig,
    *,
    workdir: Path,
    on_metrics: Callable[[TrainMetrics], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train `config` in `workdir`, resuming from its latest checkpoint when there is one."""
    device = resolve_device(config.train.device)
    with numerics(deterministic=config.train.deterministic, device=device):
        run = build_run(config, Path(workdir), device)
        state, rng_state = _resume(run)
        atomic_write_json(RunFolder(run.workdir).config_file, config.to_json_dict())
        if state.iteration >= config.train.iterations:
            return _result(run, state, train_time_s=0.0, images_per_s=0.0, peak_mb=None)
        stream = build_train_stream(
            run.dataset,
            config.data,
            batch_size=config.train.batch_size,
            seed=config.seed,
            start_iteration=state.iteration,
            device=device,
        )
        # Creating a DataLoader iterator draws its base seed from the global torch generator, so
        # the stream is primed before the generators are restored, never inside the loop.
        stream = _primed(stream)
        if rng_state is not None:
            restore_rng_state(rng_state)
        return _loop(
            run, state, stream, on_metrics=on_metrics, should_stop=should_stop, progress=progress
        )


def build_run(config: RunConfig, workdir: Path, device: torch.device) -> RunParts:
    """Seed, then build dataset -> model (classes from the dataset) -> loss -> SGD."""
    seed_everything(config.seed)
    dataset = build_dataset(config.data, config.data.train_split)
    num_classes = dataset.info.num_classes
    model = build_model(config.model, num_classes=num_classes)
    model = place_model(model, device, channels_last=config.train.channels_last)
    model.train()
    loss_fn = build_loss(config.loss.name, num_classes=num_classes, **loss_options(config.loss))
    return RunParts(
        config=config,
        workdir=workdir,
        device=device,
        precision=resolve_precision(config.train.precision, device),
        model=model,
        forward=torch.compile(model) if config.train.compile else model,
        loss_fn=loss_fn.to(device),
        optimizer=build_optimizer(model, config.train),
        dataset=dataset,
        signature=ckpt.model_signature(config.model, num_classes),
    )


def _primed(stream: Batches) -> Batches:
    """The same stream with its first batch already drawn (so its set-up is done)."""
    first = next(stream)
    return itertools.chain([first], stream)


def _resume(run: RunParts) -> tuple[_LoopState, dict[str, Any] | None]:
    """Load the workdir's latest checkpoint into the model and optimiser, if there is one."""
    path = ckpt.latest_checkpoint(run.workdir)
    if path is None:
        return _LoopState(), None
    state = ckpt.load_checkpoint(
        path, signature=run.signature, config_hash=run.config.canonical_hash()
    )
    ckpt.load_model_weights(run.model, state, path)
    try:
        run.optimizer.load_state_dict(state["optimizer"])
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path}: optimiser state does not fit ({err})") from err
    loop = state["loop"]
    iteration = int(state["iteration"])
    return _LoopState(
        iteration=iteration,
        window=[float(v) for v in loop["window"]],
        last_loss=float(loop["last_loss"]),
        fallbacks_before=int(loop["rmi_fallbacks"]),
        resumed_from=iteration,
    ), state["rng"]


def train_step(
    run: RunParts, images: torch.Tensor, labels: torch.Tensor, step: int
) -> torch.Tensor:
    """One optimiser step (0-based index `step`); returns the loss, still on the device."""
    train = run.config.train
    set_lr(run.optimizer, schedule_from_config(train, step))
    with autocast(run.device, run.precision):
        logits = run.forward(to_input(images, channels_last=train.channels_last))
    # The loss always runs in float32: RMI's statistics and BCE sums lose too much in bf16.
    logits = logits.float()
    if logits.shape[-2:] != labels.shape[-2:]:
        # Our models already return input-size logits; this keeps other models to the recipe
        # ("logits upsampled to the input size before the loss"), with the models' convention.
        logits = F.interpolate(logits, labels.shape[-2:], mode="bilinear", align_corners=True)
    loss = run.loss_fn(logits, labels, progress=step / train.iterations)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    return loss.detach()


def _loop(
    run: RunParts,
    state: _LoopState,
    stream: Batches,
    *,
    on_metrics: Callable[[TrainMetrics], None] | None,
    should_stop: Callable[[], bool] | None,
    progress: bool,
) -> TrainResult:
    train = run.config.train
    reset_peak_memory(run.device)
    clock = TrainClock(start_iteration=state.iteration)
    with TrainProgress(total=train.iterations, start=state.iteration, enabled=progress) as bar:
        while state.iteration < train.iterations:
            if should_stop is not None and should_stop():
                _stop(run, state)
            images, labels = next(stream)
            state.pending.append(train_step(run, images, labels, state.iteration))
            state.iteration += 1
            bar.advance(state.iteration)
            finished = state.iteration == train.iterations
            if state.iteration % train.log_every == 0 or finished:
                _report(run, state, clock, bar, on_metrics)
            if state.iteration % train.checkpoint_every == 0 or finished:
                _save(run, state)
    done = state.iteration - clock.start_iteration
    train_time = clock.elapsed()
    return _result(
        run,
        state,
        train_time_s=train_time,
        images_per_s=done * train.batch_size / max(train_time, 1e-9),
        peak_mb=peak_memory_mb(run.device),
    )


def _flush(run: RunParts, state: _LoopState) -> None:
    """Read the pending losses back (one device sync) and fail on the first non-finite one."""
    if not state.pending:
        return
    values = torch.stack(state.pending).float().cpu().tolist()
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


def _report(
    run: RunParts,
    state: _LoopState,
    clock: TrainClock,
    bar: TrainProgress,
    on_metrics: Callable[[TrainMetrics], None] | None,
) -> None:
    _flush(run, state)
    if not state.window:
        return
    train = run.config.train
    metrics = TrainMetrics(
        iteration=state.iteration,
        loss=math.fsum(state.window) / len(state.window),
        lr=schedule_from_config(train, state.iteration - 1),
        images_per_s=clock.lap(state.iteration, train.batch_size),
        elapsed_s=clock.elapsed(),
        rmi_fallbacks=_fallbacks(run, state),
    )
    state.window.clear()
    bar.report(metrics, eta_s=clock.eta(state.iteration, train.iterations))
    if on_metrics is not None:
        on_metrics(metrics)


def _fallbacks(run: RunParts, state: _LoopState) -> int:
    return state.fallbacks_before + int(getattr(run.loss_fn, "fallback_count", 0))


def _save(run: RunParts, state: _LoopState) -> Path:
    _flush(run, state)
    return ckpt.save_checkpoint(
        ckpt.checkpoint_dir(run.workdir),
        {
            "iteration": state.iteration,
            "config_hash": run.config.canonical_hash(),
            "signature": run.signature,
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "rng": capture_rng_state(),
            "loop": {
                "window": list(state.window),
                "last_loss": state.last_loss,
                "rmi_fallbacks": _fallbacks(run, state),
            },
        },
    )


def _stop(run: RunParts, state: _LoopState) -> None:
    path = _save(run, state)
    raise Interrupted(
        f"run stopped at iteration {state.iteration} of {run.config.train.iterations}; "
        f"checkpoint saved to {path}; run it again with the same work directory "
        f"({run.workdir}) to resume from there"
    )


def _result(
    run: RunParts,
    state: _LoopState,
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
        rmi_fallbacks=_fallbacks(run, state),
        resumed_from=state.resumed_from,
        fingerprint=environment_fingerprint(run.device),
    )
