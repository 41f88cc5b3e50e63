"""What every segmentation loss shares: the `SegLoss` module interface and input validation.

Labels follow the project's convention (`constants.IGNORE_INDEX`, design.md): a pixel counts
when `0 <= label < num_classes` and `label != ignore_index`; everything else (255 on VOC, 11 on
CamVid with 11 classes, any other out-of-range value) is ignored by every loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rmi_cli.errors import LossOptionError


@dataclass(frozen=True)
class BatchShare:
    """This process's share of a global batch split across data-parallel ranks.

    Every loss here is a sum over pixels (or images, or pixel pairs) divided by a count of the
    same things. With a share, a loss divides its local sum by the count summed over all ranks
    (`total`), so it returns this rank's part of the global-batch loss: the parts add up to the
    loss of the whole batch, whatever the shares' valid-pixel counts are (a mean of per-rank
    means would not). `sum_ranks` all-reduces a tensor with SUM across the ranks; None (the
    default, `LOCAL`) means one process holds the whole batch.
    """

    world_size: int = 1
    sum_ranks: Callable[[Tensor], Tensor] | None = None

    def total(self, local: Tensor) -> Tensor:
        """`local` (a count; no gradient flows through it) summed over every rank."""
        if self.sum_ranks is None:
            return local
        return self.sum_ranks(local.detach().clone())


LOCAL = BatchShare()


class LossInputError(ValueError):
    """Tensors a loss cannot take (shapes, dtypes, devices, a channel count that is not the
    loss's `num_classes`). Inside `rmi` the engine builds both sides from one configuration, so
    this is a bug, not the user's input: it is deliberately not a `UserError`, keeps its
    traceback, and a queued job that hits it is retried with the traceback stored. Options and
    sizes a user chose (radius, pool_size vs crop size) raise `LossOptionError` instead."""


class SegLoss(nn.Module):
    """A segmentation loss: `forward(logits (B, C, H, W), labels (B, H, W)) -> scalar`.

    `progress` is step / max_iter in [0, 1]; only losses with a schedule (the affinity field
    loss's decay) use it. `share` says which part of a data-parallel global batch this is
    (`BatchShare`); the default is the whole batch. `fallback_count` counts RMI Cholesky
    fallbacks since construction and stays 0 for every other loss; it is meant for logging.
    """

    def __init__(self, *, num_classes: int, ignore_index: int) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise LossOptionError(f"num_classes must be a positive integer; found {num_classes!r}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        # A device tensor once counted: reading it is the only synchronisation it costs.
        self._fallbacks: int | Tensor = 0

    @property
    def fallback_count(self) -> int:
        """How many (image, class) matrices needed the Cholesky fallback so far."""
        return int(self._fallbacks)

    def forward(
        self, logits: Tensor, labels: Tensor, *, progress: float = 0.0, share: BatchShare = LOCAL
    ) -> Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, ignore_index={self.ignore_index}"


def check_inputs(logits: Tensor, labels: Tensor, num_classes: int | None) -> int:
    """Validate a (logits, labels) pair and return the number of classes.

    Raises `LossInputError` naming both shapes when they do not fit together.
    """
    if logits.dim() != 4 or not logits.is_floating_point():
        raise LossInputError(
            f"logits must be a floating-point (B, C, H, W) tensor; found {logits.dtype} "
            f"{tuple(logits.shape)}"
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise LossInputError(f"labels must be an integer tensor; found {labels.dtype}")
    batch, channels, height, width = logits.shape
    if tuple(labels.shape) != (batch, height, width):
        raise LossInputError(
            f"labels must have shape (B, H, W) = {(batch, height, width)} to match logits "
            f"(B, C, H, W) = {tuple(logits.shape)}; found labels {tuple(labels.shape)}"
        )
    if labels.device != logits.device:
        raise LossInputError(
            f"labels are on {labels.device} but logits on {logits.device}; move both to one device"
        )
    if num_classes is not None and num_classes != channels:
        raise LossInputError(
            f"num_classes is {num_classes} but the logits have {channels} channels "
            f"(shape {tuple(logits.shape)}); build the loss with num_classes={channels} "
            f"or fix the model's output"
        )
    if channels < 1 or height < 1 or width < 1 or batch < 1:
        raise LossInputError(f"logits must not be empty; found shape {tuple(logits.shape)}")
    return channels


def valid_mask(labels: Tensor, num_classes: int, ignore_index: int) -> Tensor:
    """Boolean (B, H, W) mask of the pixels that carry a label (recipe 1.1)."""
    return (labels >= 0) & (labels < num_classes) & (labels != ignore_index)


def work_dtype(logits: Tensor) -> torch.dtype:
    """The dtype of the pixel-level arithmetic: at least float32 (half inputs are upcast)."""
    return torch.promote_types(logits.dtype, torch.float32)
