"""Data-parallel maths in float64: two gloo processes, each with half of a batch, compute exactly
the loss and the gradient one process computes on the whole batch, for every loss, on the real
DeepLabv3-ResNet18 (its ASPP pooling branch normalises 1x1 maps: per-rank statistics there would
be over 2 values instead of 4).

What is checked: the losses divide by counts summed over the ranks (`BatchShare`; the two halves
have very different numbers of valid pixels, so a mean of per-rank means would be off by far more
than the tolerance), BatchNorm statistics over the global batch (`GlooSyncBatchNorm`, through
DDP), and the loss scaled by the world size against DDP's gradient averaging. In float64 the only
difference left is summation order: 1e-9 relative is far below any of those mistakes (each moves
the gradient by 1e-2 or more)."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from rmi_cli.config import ModelConfig
from rmi_cli.losses import LOSSES, build_loss
from rmi_cli.models import build_model

WORLD = 2
CLASSES = 4
LOSS_OPTIONS = {"rmi": {"radius": 2, "pool_size": 2}, "aaf": {"downsample": 4}}


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    config = ModelConfig(name="deeplabv3", backbone="resnet18", dropout=0.0)
    return build_model(config, num_classes=CLASSES).double()


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(4, 3, 16, 16, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, CLASSES, (4, 16, 16), generator=generator)
    labels[:2, :12] = 255  # rank 0's half: 3/4 of its pixels ignored; rank 1's: none
    return images, labels


def one_process(name: str) -> tuple[float, list[torch.Tensor]]:
    net = tiny_net()
    images, labels = batch()
    loss = build_loss(name, num_classes=CLASSES, **LOSS_OPTIONS.get(name, {}))
    value = loss(net(images), labels, progress=0.3)
    value.backward()
    return value.item(), [p.grad.clone() for p in net.parameters()]


def _rank(rank: int, port: int, out: str) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    from rmi_cli.engine.distributed import join_from_env, leave, wrap_model

    ranks = join_from_env()
    assert ranks is not None
    images, labels = batch()
    mine = slice(2 * rank, 2 * rank + 2)
    results = {}
    for name in sorted(LOSSES):
        model, ddp = wrap_model(tiny_net(), ranks)
        loss = build_loss(name, num_classes=CLASSES, **LOSS_OPTIONS.get(name, {}))
        part = loss(ddp(images[mine]), labels[mine], progress=0.3, share=ranks.share())
        (part * WORLD).backward()
        total = ranks.sum_device(part.detach())
        results[name] = {"loss": total.item(), "grads": [p.grad for p in model.parameters()]}
    if rank == 0:
        torch.save(results, out)
    leave(ranks)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Rank 0's view after both ranks ran every loss (one spawn for all: each costs seconds)."""
    out = tmp_path_factory.mktemp("ddp") / "rank0.pt"
    mp.start_processes(_rank, args=(_free_port(), str(out)), nprocs=WORLD, start_method="spawn")
    return torch.load(out, weights_only=True)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_two_ranks_compute_the_global_batch_loss_and_gradient(
    name: str, two_ranks: dict[str, dict]
) -> None:
    expected_loss, expected_grads = one_process(name)
    got = two_ranks[name]
    assert got["loss"] == pytest.approx(expected_loss, rel=1e-9)
    for want, grad in zip(expected_grads, got["grads"], strict=True):
        # Per tensor, as a norm: elementwise, values near 0 beside large ones carry the
        # absolute rounding of their neighbours.
        assert (grad - want).norm() <= 1e-9 * want.norm(), (grad - want).norm() / want.norm()
