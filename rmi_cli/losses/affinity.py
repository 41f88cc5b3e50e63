"""The affinity field loss (Ke et al., "Adaptive Affinity Fields for Semantic Segmentation",
ECCV 2018), the paper's "Affinity" comparator (recipe section 2).

loss = CE (full resolution) + decay * (lambda_edge * mean edge term + lambda_non_edge * mean
non-edge term), decay = decay_base^(-progress), on labels and softmax probabilities downsampled
by `downsample` (labels: nearest, logits: bilinear with align_corners=True, as in the RMI
authors' port). For every pixel p and each of its 8 neighbours q in the 3x3 region, and every
class c, the binary KL divergence of the neighbour from the centre,

    KL_c(q || p) = q_c log(q_c / p_c) + (1 - q_c) log((1 - q_c) / (1 - p_c)),

with q_c, p_c, 1 - q_c and 1 - p_c each clipped to [1e-4, 1] (Ke et al.'s clipping). The entry
(p, q, c) is an edge when the one-hot labels of p and q differ in class c (so a pair with labels
a != b has edges in classes a and b, non-edges elsewhere): edges pay max(0, kld_margin - KL),
non-edges pay KL. Both directions of a pair count, because both pixels see each other as a
neighbour (as in Ke et al.). Each term is the mean over its entries (0 when it has none).

Masking: a pair enters only when both pixels are inside the image and carry a label. Ke et al.'s
TensorFlow code also drops (p, p+o) when the mirrored neighbour p-o is ignored (it ORs the masks
of o and -o); we do not copy that. The RMI authors' port masked nothing (it zero-padded the
border and let ignored pixels in); the recipe asks for correct masking, and this is it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from rmi_cli.constants import IGNORE_INDEX
from rmi_cli.errors import LossOptionError
from rmi_cli.losses.base import LOCAL, BatchShare, SegLoss, check_inputs, valid_mask, work_dtype
from rmi_cli.losses.baselines import ce_loss

# Ke et al.'s clipping of the probabilities and their complements.
_BOT_EPSILON = 1e-4
_TOP_EPSILON = 1.0
NEIGHBOURS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))


def check_affinity_options(
    kld_margin: float,
    lambda_edge: float,
    lambda_non_edge: float,
    decay_base: float,
    downsample: int,
) -> None:
    """Validate the options with the bounds of `config.AffinityLossConfig`."""
    if not kld_margin > 0:
        raise LossOptionError(f"affinity kld_margin must be > 0; found {kld_margin!r}")
    if not (lambda_edge >= 0 and lambda_non_edge >= 0):
        raise LossOptionError(
            f"affinity lambda_edge and lambda_non_edge must be >= 0; found {lambda_edge!r} "
            f"and {lambda_non_edge!r}"
        )
    if not decay_base >= 1:
        raise LossOptionError(f"affinity decay_base must be >= 1; found {decay_base!r}")
    if isinstance(downsample, bool) or not isinstance(downsample, int) or downsample < 1:
        raise LossOptionError(f"affinity downsample must be an integer >= 1; found {downsample!r}")


def affinity_field_loss(
    logits: Tensor,
    labels: Tensor,
    *,
    num_classes: int | None = None,
    kld_margin: float = 3.0,
    lambda_edge: float = 1.0,
    lambda_non_edge: float = 1.0,
    decay_base: float = 20.0,
    downsample: int = 8,
    progress: float = 0.0,
    ignore_index: int = IGNORE_INDEX,
    share: BatchShare = LOCAL,
) -> Tensor:
    """Softmax CE + the decayed affinity field terms (see the module doc): a scalar."""
    check_affinity_options(kld_margin, lambda_edge, lambda_non_edge, decay_base, downsample)
    classes = check_inputs(logits, labels, num_classes)
    ce = ce_loss(logits, labels, num_classes=classes, ignore_index=ignore_index, share=share)
    small_labels, probs = _downsample(logits, labels, classes, ignore_index, downsample)
    edge, non_edge = affinity_terms(small_labels, probs, kld_margin, share=share)
    decay = float(decay_base) ** (-float(progress))
    return ce + decay * (lambda_edge * edge + lambda_non_edge * non_edge)


def _downsample(
    logits: Tensor, labels: Tensor, classes: int, ignore_index: int, factor: int
) -> tuple[Tensor, Tensor]:
    """Labels (B, h, w) with `classes` meaning "no label", and softmax probabilities."""
    height, width = logits.shape[-2:]
    coded = torch.where(valid_mask(labels, classes, ignore_index), labels, classes)
    logits = logits.to(work_dtype(logits))
    if factor > 1:
        size = (height // factor, width // factor)
        if min(size) < 1:
            raise LossOptionError(
                f"the affinity loss downsamples by {factor}: input {height}x{width} gives "
                f"{size[0]}x{size[1]}; use larger images or a smaller downsample"
            )
        small = F.interpolate(coded.unsqueeze(1).float(), size=size, mode="nearest")
        coded = small.squeeze(1).long()
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=True)
    return coded.long(), torch.softmax(logits, dim=1)


def affinity_terms(
    labels: Tensor, probs: Tensor, kld_margin: float, *, share: BatchShare = LOCAL
) -> tuple[Tensor, Tensor]:
    """(mean edge hinge, mean non-edge KL) over the valid 8-neighbour pairs (of the global
    batch when `share` is a rank's part of one).

    labels (B, h, w) with values >= C meaning "no label"; probs (B, C, h, w).
    """
    clipped = (
        probs.clamp(_BOT_EPSILON, _TOP_EPSILON),
        (1.0 - probs).clamp(_BOT_EPSILON, _TOP_EPSILON),
    )
    logs = (clipped[0].log(), clipped[1].log())
    parts = [_offset_terms(labels, clipped, logs, offset, kld_margin) for offset in NEIGHBOURS]
    edge_sum, edge_count, non_edge_sum, non_edge_count = (
        torch.stack(t).sum() for t in zip(*parts, strict=True)
    )
    edge_count, non_edge_count = share.total(edge_count), share.total(non_edge_count)
    return edge_sum / edge_count.clamp(min=1), non_edge_sum / non_edge_count.clamp(min=1)


def _offset_terms(
    labels: Tensor,
    clipped: tuple[Tensor, Tensor],
    logs: tuple[Tensor, Tensor],
    offset: tuple[int, int],
    kld_margin: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(edge hinge sum, edge count, non-edge KL sum, non-edge count) of one neighbour offset."""
    classes = clipped[0].shape[1]
    (cy, cx), (ny, nx) = _pair_slices(offset, labels.shape[-2:])
    lab_c, lab_n = labels[:, cy, cx], labels[:, ny, nx]
    pair = (lab_c < classes) & (lab_n < classes)
    is_edge = pair & (lab_c != lab_n)
    kl = torch.zeros_like(clipped[0][:, :, cy, cx])  # (B, C, h', w'): KL_c(q || p), Ke's form
    for prob, log in zip(clipped, logs, strict=True):
        kl = kl + prob[:, :, ny, nx] * (log[:, :, ny, nx] - log[:, :, cy, cx])
    hinge = (kld_margin - kl).clamp(min=0.0)
    # The edge entries of a pair with labels a != b are the classes a and b, nowhere else.
    index_c = torch.where(pair, lab_c, 0).unsqueeze(1)
    index_n = torch.where(pair, lab_n, 0).unsqueeze(1)
    edge_hinge = (hinge.gather(1, index_c) + hinge.gather(1, index_n)).squeeze(1)
    edge_kl = (kl.gather(1, index_c) + kl.gather(1, index_n)).squeeze(1)
    edge_count = 2 * is_edge.sum()
    non_edge = torch.where(pair, kl.sum(1), 0.0).sum() - torch.where(is_edge, edge_kl, 0.0).sum()
    return (
        torch.where(is_edge, edge_hinge, 0.0).sum(),
        edge_count,
        non_edge,
        classes * pair.sum() - edge_count,
    )


def _pair_slices(
    offset: tuple[int, int], size: torch.Size
) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Slices of the centres p and of their neighbours p + offset, both inside the map."""
    (dy, dx), (height, width) = offset, size
    centre = (slice(max(0, -dy), height - max(0, dy)), slice(max(0, -dx), width - max(0, dx)))
    other = (slice(max(0, dy), height + min(0, dy)), slice(max(0, dx), width + min(0, dx)))
    return centre, other


class AffinityLoss(SegLoss):
    """Softmax CE + the affinity field loss; `progress` drives the decay of the second term."""

    def __init__(
        self,
        *,
        num_classes: int,
        ignore_index: int = IGNORE_INDEX,
        kld_margin: float = 3.0,
        lambda_edge: float = 1.0,
        lambda_non_edge: float = 1.0,
        decay_base: float = 20.0,
        downsample: int = 8,
    ) -> None:
        super().__init__(num_classes=num_classes, ignore_index=ignore_index)
        check_affinity_options(kld_margin, lambda_edge, lambda_non_edge, decay_base, downsample)
        self.options: dict[str, Any] = {
            "kld_margin": float(kld_margin),
            "lambda_edge": float(lambda_edge),
            "lambda_non_edge": float(lambda_non_edge),
            "decay_base": float(decay_base),
            "downsample": downsample,
        }

    def forward(
        self, logits: Tensor, labels: Tensor, *, progress: float = 0.0, share: BatchShare = LOCAL
    ) -> Tensor:
        return affinity_field_loss(
            logits,
            labels,
            num_classes=self.num_classes,
            progress=progress,
            ignore_index=self.ignore_index,
            share=share,
            **self.options,
        )

    def extra_repr(self) -> str:
        options = ", ".join(f"{key}={value}" for key, value in self.options.items())
        return f"{super().extra_repr()}, {options}"
