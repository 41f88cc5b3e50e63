"""BatchNorm with statistics over the global batch on the CPU (gloo), where torch's SyncBatchNorm
refuses to run ("SyncBatchNorm expected input tensor to be on GPU").

Without it, each CPU rank's BatchNorm would normalise its own share of the batch (B/N images)
and the running statistics would be rank 0's (DDP broadcasts buffers from rank 0): a different
model from the one process with the whole batch trains. Here the per-channel mean and variance
are all-reduced (two passes, like BatchNorm's own: mean first, then the centred squares) by
`_SumRanks`, whose backward sums the gradients across ranks too; so
forward and backward are those of one BatchNorm over the global batch, up to floating-point
summation order. Running statistics use the unbiased global variance, as `nn.BatchNorm2d` does.
On CUDA the engine uses torch's `SyncBatchNorm` (NCCL) instead.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn


class _SumRanks(torch.autograd.Function):
    """Sum over the ranks. Every rank's loss depends on the sum, so the gradient of the total
    loss with respect to each rank's input is the sum of the ranks' incoming gradients."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


def all_reduce(tensor: Tensor) -> Tensor:
    """`tensor` summed over the ranks, differentiably."""
    result: Tensor = _SumRanks.apply(tensor)
    return result


class GlooSyncBatchNorm(nn.BatchNorm2d):
    """`nn.BatchNorm2d` whose training statistics cover every rank's share of the batch."""

    def forward(self, input: Tensor) -> Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        channels = (0, 2, 3)
        count = torch.tensor(float(input.numel() // input.shape[1]), dtype=input.dtype)
        count = all_reduce(count)
        mean = all_reduce(input.sum(channels)) / count  # (C,)
        centred = input - mean[None, :, None, None]
        var = all_reduce(centred.square().sum(channels)) / count  # biased, as BN normalises
        if self.track_running_stats:
            self._update_running(mean.detach(), var.detach(), count)
        scale = torch.rsqrt(var + self.eps)
        out = centred * scale[None, :, None, None]
        if self.affine:
            out = out * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return out

    @torch.no_grad()
    def _update_running(self, mean: Tensor, var: Tensor, count: Tensor) -> None:
        assert self.running_mean is not None and self.running_var is not None
        assert self.num_batches_tracked is not None
        self.num_batches_tracked.add_(1)
        momentum = self.momentum
        if momentum is None:  # cumulative moving average, as nn.BatchNorm2d
            momentum = 1.0 / float(self.num_batches_tracked)
        unbiased = var * count / (count - 1).clamp(min=1)
        self.running_mean.lerp_(mean, momentum)
        self.running_var.lerp_(unbiased, momentum)

    @classmethod
    def convert(cls, module: nn.Module) -> nn.Module:
        """`module` with every `nn.BatchNorm2d` replaced by this class (same parameters and
        buffers, same state-dict keys)."""
        if isinstance(module, nn.BatchNorm2d) and not isinstance(module, cls):
            synced = cls(
                module.num_features,
                eps=module.eps,
                momentum=module.momentum,
                affine=module.affine,
                track_running_stats=module.track_running_stats,
            )
            reference = next(iter([*module.parameters(), *module.buffers()]), None)
            if reference is not None and reference.is_floating_point():
                synced = synced.to(device=reference.device, dtype=reference.dtype)
            synced.load_state_dict(module.state_dict())
            if module.affine:
                synced.weight, synced.bias = module.weight, module.bias
            synced.train(module.training)
            return synced
        for name, child in module.named_children():
            module.add_module(name, cls.convert(child))
        return module
