"""The full-resolution half of the RMI objective: sigmoid BCE and pooled probabilities.

Everything that touches the (B, C, H, W) logits happens here, one chunk of images at a time, so
that (for pool_size > 1) the only (B, C, H, W) tensor the loss allocates is the logits' gradient:

- the pixel term (recipe 1.2): sum over valid pixels and classes of the sigmoid BCE, written as
  `softplus(x) - x * [label == c]` with no one-hot target: `softplus(x)` everywhere, then
  `softplus(-x)` scattered in at the label's channel;
- the probabilities `p = sigmoid(x) * valid + 1e-6` (recipe 1.3), pooled right away (1.4);
- the labels are never one-hot at full resolution: their pooled map is a count of labels per
  pooling cell (avg: count / k^2, max: count > 0), which is what pooling the one-hot computes.

`PixelTerms` is a custom autograd Function: its backward recomputes the sigmoid of the chunk
instead of saving it, and writes the gradient straight into the logits' gradient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from rmi_cli.losses.base import valid_mask

# Recipe 1.3: the released code adds 1e-6 to every probability (it is not a clamp).
PROB_EPSILON = 1e-6
# softplus(x) == x above this threshold up to exp(-40) ~ 4e-18 relative: exact in float64 too
# (PyTorch's default threshold, 20, would cost float64 inputs ~2e-9 per element).
_SOFTPLUS_THRESHOLD = 40.0
# Bytes of full-resolution work tensors per chunk of images (a few such tensors are alive).
CHUNK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Pooling:
    """Recipe 1.4's downsampling: `way` avg|max|nearest, kernel = stride = `size`."""

    way: str
    size: int

    def out_size(self, height: int, width: int) -> tuple[int, int]:
        """The pooled map's (H', W'); (H, W) itself when size is 1 (no downsampling)."""
        k = self.size
        if k == 1:
            return height, width
        if self.way == "nearest":
            return height // k, width // k
        pad = k // 2
        return (height + 2 * pad - k) // k + 1, (width + 2 * pad - k) // k + 1

    def pool(self, probs: Tensor) -> Tensor:
        """(b, C, H, W) -> (b, C, H', W'), exactly the released code's call."""
        k = self.size
        if k == 1:
            return probs
        if self.way == "avg":
            return F.avg_pool2d(probs, k, k, k // 2)
        if self.way == "max":
            return F.max_pool2d(probs, k, k, k // 2)
        size = self.out_size(probs.shape[-2], probs.shape[-1])
        return F.interpolate(probs, size=size, mode="bilinear", align_corners=True)

    def unpool(self, grad_pooled: Tensor, probs: Tensor) -> Tensor:
        """The vector-Jacobian product of `pool` at `probs` (b, C, H, W)."""
        k = self.size
        if k == 1:
            return grad_pooled
        if self.way == "avg":
            # Linear and input-independent: no need to run the pooling forward again.
            return torch.ops.aten.avg_pool2d_backward(
                grad_pooled, probs, [k, k], [k, k], [k // 2, k // 2], False, True, None
            )
        with torch.enable_grad():
            leaf = probs.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.pool(leaf), leaf, grad_pooled)
        return grad


def pool_labels(
    labels: Tensor, valid: Tensor, num_classes: int, pooling: Pooling, dtype: torch.dtype
) -> Tensor:
    """The pooled one-hot labels (B, C, H', W') in `dtype`, without a full-size one-hot.

    Ignored pixels are all-zero in every class (recipe 1.1). For avg/max this counts the labels
    of each pooling cell (kernel = stride, so cells do not overlap); the division by k^2 is the
    same division `avg_pool2d` does, so the result is bit-identical to pooling the
    one-hot. For nearest, the label map itself is resized (PyTorch's legacy nearest rule).
    """
    batch, height, width = labels.shape
    classes = torch.arange(num_classes, device=labels.device).view(1, -1, 1, 1)
    coded = torch.where(valid, labels, num_classes)  # one code for "no label"
    k = pooling.size
    if k == 1 or pooling.way == "nearest":
        small = coded.unsqueeze(1)
        if k > 1:
            size = pooling.out_size(height, width)
            small = F.interpolate(small.float(), size=size, mode="nearest").long()
        return (small == classes).to(dtype)
    out_h, out_w = pooling.out_size(height, width)
    rows = _cell_of(height, out_h, k, labels.device)
    cols = _cell_of(width, out_w, k, labels.device)
    cells = out_h * out_w
    dump = batch * num_classes * cells  # one extra bin for uncovered or ignored pixels
    image = torch.arange(batch, device=labels.device).view(-1, 1, 1)
    flat = (image * num_classes + coded) * cells + (rows.view(-1, 1) * out_w + cols.view(1, -1))
    inside = valid & (rows.view(-1, 1) >= 0) & (cols.view(1, -1) >= 0)
    flat = torch.where(inside, flat, dump)
    counts = torch.zeros(dump + 1, dtype=dtype, device=labels.device)
    # index_put_ with accumulate is deterministic (also under use_deterministic_algorithms), and
    # sums of at most k^2 <= 100 ones are exact in any order.
    one = torch.ones((), dtype=dtype, device=labels.device)
    counts.index_put_((flat.view(-1),), one, accumulate=True)
    counts = counts[:-1].view(batch, num_classes, out_h, out_w)
    if pooling.way == "max":
        return (counts > 0).to(dtype)
    return counts / float(k * k)


def _cell_of(size: int, out: int, k: int, device: torch.device) -> Tensor:
    """Pooling cell of each pixel along one axis (zero padding k//2), -1 where none covers it."""
    cell = (torch.arange(size, device=device) + k // 2) // k
    return torch.where(cell < out, cell, -1)


def chunk_images(logits: Tensor, dtype: torch.dtype) -> int:
    """How many images fit in one chunk of full-resolution work tensors."""
    per_image = logits[0].numel() * torch.finfo(dtype).bits // 8
    return max(1, CHUNK_BYTES // max(per_image, 1))


class PixelTerms(torch.autograd.Function):
    """logits (B, C, H, W) -> (BCE sum over valid pixels and classes, pooled probabilities).

    The BCE sum is float64 (accumulated in float64 from `dtype` terms, so large cancelling sums
    stay exact); the pooled map (B, C, H', W') is `dtype`, empty when `pooling` is None.
    """

    @staticmethod
    def forward(
        logits: Tensor,
        labels: Tensor,
        num_classes: int,
        ignore_index: int,
        pooling: Pooling | None,
        dtype: torch.dtype,
    ) -> tuple[Tensor, Tensor]:
        step = chunk_images(logits, dtype)
        total = torch.zeros((), dtype=torch.float64, device=logits.device)
        pooled = []
        for start in range(0, logits.shape[0], step):
            x = logits[start : start + step].to(dtype)
            lab = labels[start : start + step]
            valid = valid_mask(lab, num_classes, ignore_index)
            total = total + _bce_sum(x, lab, valid)
            if pooling is not None:
                pooled.append(pooling.pool(_probabilities(torch.sigmoid(x), valid)))
        if pooling is None:
            return total, logits.new_empty(0, dtype=dtype)
        return total, torch.cat(pooled)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        logits, labels, num_classes, ignore_index, pooling, dtype = inputs
        ctx.save_for_backward(logits, labels)
        ctx.options = (num_classes, ignore_index, pooling, dtype)
        if pooling is None:
            ctx.mark_non_differentiable(output[1])

    @staticmethod
    def backward(ctx: Any, grad_sum: Tensor, grad_pooled: Tensor | None) -> tuple[Any, ...]:
        logits, labels = ctx.saved_tensors
        num_classes, ignore_index, pooling, dtype = ctx.options
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None, None
        grad_logits = torch.empty_like(logits)  # same layout (e.g. channels_last) as the logits
        coef = grad_sum.to(dtype)
        step = chunk_images(logits, dtype)
        for start in range(0, logits.shape[0], step):
            stop = start + step
            lab = labels[start:stop]
            out = grad_logits[start:stop]
            g_pooled = None if pooling is None or grad_pooled is None else grad_pooled[start:stop]
            grad = _chunk_grad(
                torch.sigmoid(logits[start:stop].to(dtype)),
                (lab, valid_mask(lab, num_classes, ignore_index)),
                coef,
                (pooling, g_pooled),
                out if out.dtype == dtype else None,
            )
            if grad is not out:
                out.copy_(grad)
        return grad_logits, None, None, None, None, None


def _probabilities(sig: Tensor, valid: Tensor) -> Tensor:
    """p = sigmoid * valid + 1e-6 (recipe 1.3), in place on `sig` (b, C, H, W)."""
    eps = sig.new_full((), PROB_EPSILON)  # a fill, not a host-to-device copy (no sync)
    return torch.addcmul(eps, sig, valid.unsqueeze(1), out=sig)


def _bce_sum(x: Tensor, labels: Tensor, valid: Tensor) -> Tensor:
    """Sum of BCE-with-logits over valid pixels and classes of one chunk, float64 (recipe 1.2)."""
    target = torch.where(valid, labels, 0).long().unsqueeze(1)  # (b, 1, H, W)
    terms = F.softplus(x, threshold=_SOFTPLUS_THRESHOLD)  # the loss of a 0 target
    positive = F.softplus(-x.gather(1, target), threshold=_SOFTPLUS_THRESHOLD)
    terms.scatter_(1, target, positive)  # the loss of the 1 target at the label's channel
    per_pixel = terms.sum(1, dtype=torch.float64)
    return torch.where(valid, per_pixel, 0.0).sum()


def _chunk_grad(
    sig: Tensor,
    labelling: tuple[Tensor, Tensor],
    coef: Tensor,
    pooled: tuple[Pooling | None, Tensor | None],
    out: Tensor | None,
) -> Tensor:
    """d(loss)/d(logits) of one chunk: valid * (dL/dp * s(1-s) + coef * (s - onehot)).

    `sig` is sigmoid(x) (b, C, H, W) and is overwritten; `labelling` is (labels, valid);
    `pooled` is (pooling, dL/d(pooled p)); the result goes to `out` when it is given.
    """
    labels, valid = labelling
    pooling, grad_pooled = pooled
    mask = valid.unsqueeze(1)
    if pooling is not None and grad_pooled is not None:
        # avg pooling's VJP only needs the shape; max/bilinear need the probabilities.
        needs_values = pooling.size > 1 and pooling.way != "avg"
        probs = _probabilities(sig.clone(), valid) if needs_values else sig
        grad_probs = pooling.unpool(grad_pooled.to(sig.dtype), probs)
        del probs
        sig.mul_(mask)  # s * valid: zero where ignored, so every term below vanishes there
        if out is None:
            grad = torch.ops.aten.sigmoid_backward(grad_probs, sig)
        else:
            grad = torch.ops.aten.sigmoid_backward.grad_input(grad_probs, sig, grad_input=out)
        del grad_probs
        grad.addcmul_(sig, coef)
    else:
        sig.mul_(mask)
        grad = sig.mul_(coef) if out is None else torch.mul(sig, coef, out=out)
    target = torch.where(valid, labels, 0).long().unsqueeze(1)
    grad.scatter_add_(1, target, mask.to(grad.dtype) * -coef)
    return grad
