"""Data-parallel training over processes started by torchrun: the process group, the model
wrapper, and the few host-side messages the ranks exchange.

`torchrun --nproc-per-node N -m rmi_cli train ...` starts N copies of a command with RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT set; `join_from_env` turns that into a
`Ranks`. The global batch stays `train.batch_size`: rank r takes its equal share of every batch
(`data.sampling`), the losses divide by counts summed over the ranks (`losses.BatchShare`), and
each rank scales its loss by N because DDP averages gradients: the update is the one-process
update for the global batch. BatchNorm statistics cover the global batch too: torch's
SyncBatchNorm on CUDA (NCCL), `GlooSyncBatchNorm` on the CPU (gloo), where SyncBatchNorm does not
run. Rank 0 alone writes checkpoints, reports and results; the others only compute.

Host-side messages (the stop vote of every step, RNG states for a checkpoint, the next job of a
distributed worker) go through a separate gloo group with a long timeout: rank 0 may evaluate
or run a CRF for hours while the others wait for the next job, and a rank that dies closes its
sockets, which makes the others' calls fail at once instead of waiting for that timeout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from rmi_cli.errors import ConfigError
from rmi_cli.losses import BatchShare

M = TypeVar("M", bound=nn.Module)

# Followers wait for rank 0's next job on the control group for as long as a job can take.
CONTROL_TIMEOUT = timedelta(days=7)


@dataclass(frozen=True)
class Ranks:
    """This process's place among the data-parallel processes of one torchrun launch."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device  # cuda:LOCAL_RANK under NCCL, cpu under gloo
    control: Any  # the gloo process group for host-side messages

    @property
    def is_lead(self) -> bool:
        """Rank 0: the one that writes checkpoints, reports and database rows."""
        return self.rank == 0

    def share(self) -> BatchShare:
        """How the losses normalise: counts summed over every rank of the main group."""
        return BatchShare(world_size=self.world_size, sum_ranks=_sum_ranks)

    def agree(self, value: int) -> int:
        """The largest of every rank's `value` (a vote: 0 go on, 1 stop, 2 give up)."""
        vote = torch.tensor([value], dtype=torch.int64)
        dist.all_reduce(vote, op=dist.ReduceOp.MAX, group=self.control)
        return int(vote.item())

    def sum_host(self, value: float) -> float:
        """`value` summed over the ranks (a host-side number, e.g. a fallback count)."""
        total = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(total, group=self.control)
        return float(total.item())

    def sum_device(self, values: torch.Tensor) -> torch.Tensor:
        """`values` (on this rank's device) summed over the ranks, in one collective."""
        total = values.detach().clone()
        dist.all_reduce(total)
        return total

    def gather(self, item: Any) -> list[Any]:
        """Every rank's `item` (picklable), in rank order, on every rank."""
        items: list[Any] = [None] * self.world_size
        dist.all_gather_object(items, item, group=self.control)
        return items

    def broadcast(self, item: Any = None) -> Any:
        """Rank 0's `item` (picklable) on every rank."""
        box = [item if self.is_lead else None]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]


def _sum_ranks(tensor: torch.Tensor) -> torch.Tensor:
    dist.all_reduce(tensor)
    return tensor


def launched_by_torchrun() -> bool:
    """Whether this process is one of several that torchrun started."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def join_from_env() -> Ranks | None:
    """Join the process group torchrun describes (None when this process runs alone). NCCL and
    this rank's GPU when CUDA is there, gloo on the CPU otherwise."""
    if not launched_by_torchrun():
        return None
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"torchrun started local rank {local_rank} but this machine shows "
                f"{torch.cuda.device_count()} GPU(s); use --nproc-per-node "
                f"{torch.cuda.device_count()} or fewer"
            )
        device, backend = torch.device("cuda", local_rank), "nccl"
        torch.cuda.set_device(device)
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, device_id=device if backend == "nccl" else None)
    control = dist.new_group(backend="gloo", timeout=CONTROL_TIMEOUT)
    return Ranks(dist.get_rank(), dist.get_world_size(), local_rank, device, control)


def leave(ranks: Ranks | None) -> None:
    """Leave the process group (at the end of the command)."""
    if ranks is not None and dist.is_initialized():
        dist.destroy_process_group()


def check_batch(batch_size: int, world_size: int) -> int:
    """The per-rank batch; a `ConfigError` when the global batch does not divide."""
    per_rank, rest = divmod(batch_size, world_size)
    if rest:
        raise ConfigError(
            f"train.batch_size {batch_size} does not divide among {world_size} processes: "
            f"set train.batch_size to a multiple of {world_size} (--set train.batch_size=...) "
            f"or use a number of GPUs that divides it"
        )
    return per_rank


def wrap_model(model: M, ranks: Ranks) -> tuple[M, nn.Module]:
    """(the module whose weights are saved, the DDP module that trains it). BatchNorm becomes
    synchronised first (in place: the converters replace the BatchNorm children and return the
    same top-level module), so that the optimiser and DDP see the final modules."""
    from torch.nn.parallel import DistributedDataParallel

    from rmi_cli.engine.syncbn import GlooSyncBatchNorm

    if ranks.device.type == "cuda":
        converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    else:
        converted = GlooSyncBatchNorm.convert(model)
    assert converted is model, "a model that is itself a BatchNorm layer"
    device_ids = [ranks.device.index] if ranks.device.type == "cuda" else None
    return model, DistributedDataParallel(model, device_ids=device_ids)


def resolve_rank_device(spec: str, ranks: Ranks) -> torch.device:
    """A data-parallel rank trains on its own device; `train.device` may only say which kind."""
    wanted = spec.split(":")[0]
    if wanted != "auto" and wanted != ranks.device.type:
        raise ConfigError(
            f"train.device is {spec!r} but this data-parallel launch runs on "
            f"{ranks.device.type} (each rank uses its own {ranks.device.type} device); set "
            f"train.device to auto"
        )
    return ranks.device


def follow(ranks: Ranks) -> None:
    """A rank other than 0: train the jobs rank 0 hands out, until it says there are no more.

    Failures that every rank sees at the same step (a configuration error, a diverged loss, a
    stop) were recorded by rank 0: wait for its next job. Anything else ends this process, and
    torchrun then ends the others (rank 0 puts the job back on the queue).
    """
    from pathlib import Path

    from rmi_cli.config import RunConfig
    from rmi_cli.engine.signals import stop_on_signals
    from rmi_cli.engine.train import train_run
    from rmi_cli.errors import Interrupted, RunFailed

    with stop_on_signals(escalate=False) as stop:
        while (task := ranks.broadcast()) is not None:
            config = RunConfig.model_validate(task["config"])
            try:
                train_run(
                    config,
                    workdir=Path(task["workdir"]),
                    should_stop=stop,
                    progress=False,
                    ranks=ranks,
                )
            except (ConfigError, RunFailed, Interrupted):
                continue
