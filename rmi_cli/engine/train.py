"""The training loop: one `RunConfig` in, a trained checkpoint and a `TrainResult` out.

Resume is exact: a checkpoint holds the model, the optimiser, the number of steps done, every
RNG state and the loop's small state (the loss window of the next report, the RMI fallback
count), and the data stream's batch t is a pure function of (seed, t). So a run stopped at step
k and resumed in a fresh process computes, on the CPU, bit for bit what the uninterrupted run
computes.

Losses are read back from the device only at report, checkpoint and stop points (one sync
each), never every step, so the CPU keeps queueing kernels ahead of a CUDA device.

Data-parallel (`ranks`, from `distributed.join_from_env`): every rank runs this loop in lockstep
on its share of each batch; the reported losses and fallback counts are summed over the ranks,
the ranks vote on stopping every step, and rank 0 alone writes the checkpoint (which holds every
rank's RNG state, so a resume with the same number of processes is exact too) and reports.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rmi_cli.atomic import atomic_write_json
from rmi_cli.config import RunConfig, loss_options
from rmi_cli.data import build_dataset, build_train_stream
from rmi_cli.data.sampling import mix_seed
from rmi_cli.engine import checkpoint as ckpt
from rmi_cli.engine.bookkeeping import (
    LoopState,
    RunParts,
    report,
    result,
    save,
    stop,
    stop_voted,
)
from rmi_cli.engine.distributed import Ranks, check_batch, resolve_rank_device, wrap_model
from rmi_cli.engine.optim import build_optimizer, set_lr
from rmi_cli.engine.progress import TrainClock, TrainProgress
from rmi_cli.engine.rng import restore_rng_state, seed_everything
from rmi_cli.engine.runtime import numerics, place_model, resolve_device, to_input
from rmi_cli.engine.schedule import schedule_from_config
from rmi_cli.engine.timing import autocast, peak_memory_mb, reset_peak_memory, resolve_precision
from rmi_cli.errors import CheckpointError
from rmi_cli.losses import LOCAL, build_loss
from rmi_cli.models import build_model
from rmi_cli.records import TrainMetrics, TrainResult
from rmi_cli.run_folder import RunFolder

Batches = Iterator[tuple[torch.Tensor, torch.Tensor]]


def train_run(
    config: RunConfig,
    *,
    workdir: Path,
    on_metrics: Callable[[TrainMetrics], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress: bool = True,
    ranks: Ranks | None = None,
) -> TrainResult:
    """Train `config` in `workdir`, resuming from its latest checkpoint when there is one; with
    `ranks`, as one of several data-parallel processes (see the module doc)."""
    if ranks is None:
        device = resolve_device(config.train.device)
    else:
        check_batch(config.train.batch_size, ranks.world_size)
        device = resolve_rank_device(config.train.device, ranks)
    with numerics(deterministic=config.train.deterministic, device=device):
        run = build_run(config, Path(workdir), device, ranks=ranks)
        state, rng_state = _resume(run)
        if run.is_lead:
            atomic_write_json(RunFolder(run.workdir).config_file, config.to_json_dict())
        if state.iteration >= config.train.iterations:
            return result(run, state, train_time_s=0.0, images_per_s=0.0, peak_mb=None)
        stream = build_train_stream(
            run.dataset,
            config.data,
            batch_size=config.train.batch_size,
            seed=config.seed,
            start_iteration=state.iteration,
            device=device,
            share=(0, 1) if ranks is None else (ranks.rank, ranks.world_size),
        )
        # Creating a DataLoader iterator draws its base seed from the global torch generator, so
        # the stream is primed before the generators are restored, never inside the loop.
        stream = _primed(stream)
        if rng_state is not None:
            restore_rng_state(rng_state)
        progress = progress and run.is_lead
        return _loop(
            run, state, stream, on_metrics=on_metrics, should_stop=should_stop, progress=progress
        )


def build_run(
    config: RunConfig, workdir: Path, device: torch.device, *, ranks: Ranks | None = None
) -> RunParts:
    """Seed, then build dataset -> model (classes from the dataset) -> loss -> SGD; with
    `ranks`, the model is wrapped for data-parallel training (synchronised BatchNorm, DDP)."""
    seed_everything(config.seed)
    dataset = build_dataset(config.data, config.data.train_split)
    num_classes = dataset.info.num_classes
    model = build_model(config.model, num_classes=num_classes)
    model = place_model(model, device, channels_last=config.train.channels_last)
    model.train()
    trainer: nn.Module = model
    if ranks is not None:
        model, trainer = wrap_model(model, ranks)
        if ranks.rank:  # the same weights everywhere, but dropout draws of its own
            seed_everything(mix_seed(config.seed, ranks.rank))
    loss_fn = build_loss(config.loss.name, num_classes=num_classes, **loss_options(config.loss))
    return RunParts(
        config=config,
        workdir=workdir,
        device=device,
        precision=resolve_precision(config.train.precision, device),
        model=model,
        forward=torch.compile(trainer) if config.train.compile else trainer,
        loss_fn=loss_fn.to(device),
        optimizer=build_optimizer(model, config.train),
        dataset=dataset,
        signature=ckpt.model_signature(config.model, num_classes),
        ranks=ranks,
        share=LOCAL if ranks is None else ranks.share(),
    )


def _primed(stream: Batches) -> Batches:
    """The same stream with its first batch already drawn (so its set-up is done)."""
    first = next(stream)
    return itertools.chain([first], stream)


def _resume(run: RunParts) -> tuple[LoopState, dict[str, Any] | None]:
    """Load the workdir's latest checkpoint into the model and optimiser, if there is one."""
    path = ckpt.latest_checkpoint(run.workdir)
    if path is None:
        return LoopState(), None
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
    return LoopState(
        iteration=iteration,
        window=[float(v) for v in loop["window"]],
        last_loss=float(loop["last_loss"]),
        fallbacks_before=int(loop["rmi_fallbacks"]),
        resumed_from=iteration,
    ), _rank_rng(run, state)


def _rank_rng(run: RunParts, state: dict[str, Any]) -> dict[str, Any] | None:
    """This rank's saved RNG state: rank 0's is `rng`, the others' are in `rng_ranks` when the
    checkpoint was written by as many processes (else they keep their fresh seeds: the batches
    are the same, only dropout draws differ from the uninterrupted run)."""
    if run.ranks is None or run.ranks.is_lead:
        return state["rng"]
    others = state.get("rng_ranks") or []
    return others[run.ranks.rank] if len(others) == run.ranks.world_size else None


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
    # With ranks, `loss` is this rank's part of the global-batch loss; DDP averages gradients
    # over the ranks, so scaling by N makes the update that of the summed (global) loss.
    # (`share` only then: a loss written for one process need not know the keyword.)
    shared = {"share": run.share} if run.ranks is not None else {}
    loss = run.loss_fn(logits, labels, progress=step / train.iterations, **shared)
    run.optimizer.zero_grad(set_to_none=True)
    (loss * run.world_size if run.world_size > 1 else loss).backward()
    run.optimizer.step()
    return loss.detach()


def _loop(
    run: RunParts,
    state: LoopState,
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
            if stop_voted(run, should_stop):
                stop(run, state)
            images, labels = next(stream)
            state.pending.append(train_step(run, images, labels, state.iteration))
            state.iteration += 1
            bar.advance(state.iteration)
            finished = state.iteration == train.iterations
            if state.iteration % train.log_every == 0 or finished:
                report(run, state, clock, bar, on_metrics)
            if state.iteration % train.checkpoint_every == 0 or finished:
                save(run, state)
    done = state.iteration - clock.start_iteration
    train_time = clock.elapsed()
    return result(
        run,
        state,
        train_time_s=train_time,
        images_per_s=done * train.batch_size / max(train_time, 1e-9),
        peak_mb=peak_memory_mb(run.device),
    )
