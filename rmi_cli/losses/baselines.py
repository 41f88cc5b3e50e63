"""The paper's pixel-wise baselines (recipe section 2): softmax CE and the sigmoid BCE term."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rmi_cli.constants import IGNORE_INDEX
from rmi_cli.losses.base import LOCAL, BatchShare, SegLoss, check_inputs, valid_mask, work_dtype
from rmi_cli.losses.rmi_pixel_terms import PixelTerms

# F.cross_entropy's own default: a target value no class can have.
_NO_LABEL = -100


def ce_loss(
    logits: Tensor,
    labels: Tensor,
    *,
    num_classes: int | None = None,
    ignore_index: int = IGNORE_INDEX,
    share: BatchShare = LOCAL,
) -> Tensor:
    """Softmax cross-entropy (paper Eq. 1), mean over valid pixels; 0 when none is valid.

    Labels equal to `ignore_index` or outside [0, C) are ignored (F.cross_entropy alone would
    reject a label >= C, e.g. CamVid's void 11, and return NaN when every pixel is ignored).
    """
    classes = check_inputs(logits, labels, num_classes)
    valid = valid_mask(labels, classes, ignore_index)
    target = torch.where(valid, labels, _NO_LABEL).long()
    total = F.cross_entropy(
        logits.to(work_dtype(logits)), target, ignore_index=_NO_LABEL, reduction="sum"
    )
    return total / share.total(valid.sum()).clamp(min=1)


def bce_loss(
    logits: Tensor,
    labels: Tensor,
    *,
    num_classes: int | None = None,
    ignore_index: int = IGNORE_INDEX,
    share: BatchShare = LOCAL,
) -> Tensor:
    """The RMI objective's pixel term alone (recipe 1.2): sigmoid BCE against the one-hot
    labels, summed over valid pixels and classes, divided by (valid pixels + 1)."""
    classes = check_inputs(logits, labels, num_classes)
    dtype = work_dtype(logits)
    total, _ = PixelTerms.apply(logits, labels, classes, ignore_index, None, dtype)
    count = valid_mask(labels, classes, ignore_index).sum()
    return (total / (share.total(count) + 1)).to(dtype)


class _PixelwiseLoss(SegLoss):
    """One of the functions above as a module, on the whole (share of the) batch."""

    def __init__(self, *, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__(num_classes=num_classes, ignore_index=ignore_index)

    @staticmethod
    def _loss(
        logits: Tensor, labels: Tensor, *, num_classes: int, ignore_index: int, share: BatchShare
    ) -> Tensor:
        raise NotImplementedError

    def forward(
        self, logits: Tensor, labels: Tensor, *, progress: float = 0.0, share: BatchShare = LOCAL
    ) -> Tensor:
        classes, ignore = self.num_classes, self.ignore_index
        return self._loss(logits, labels, num_classes=classes, ignore_index=ignore, share=share)


class CELoss(_PixelwiseLoss):
    """Softmax cross-entropy with an ignore index (the paper's "CE" rows)."""

    _loss = staticmethod(ce_loss)


class BCELoss(_PixelwiseLoss):
    """Sigmoid BCE, the RMI objective's pixel term alone (the paper's "BCE" rows)."""

    _loss = staticmethod(bce_loss)
