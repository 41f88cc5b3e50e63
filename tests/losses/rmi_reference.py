"""Slow, obviously-correct float64 versions of the losses, written the way the recipe reads.

No chunking, no counting, no custom autograd: a full one-hot, the released code's pooling calls,
explicit window stacking per (image, class) and an explicit inverse. Only for tests.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

POS_ALPHA = 5e-4


def valid_and_onehot(labels: Tensor, classes: int, ignore_index: int) -> tuple[Tensor, Tensor]:
    valid = (labels >= 0) & (labels < classes) & (labels != ignore_index)
    onehot = torch.stack([(labels == c) & valid for c in range(classes)], 1).double()
    return valid, onehot


def pool_pair(onehot: Tensor, probs: Tensor, pool: str, k: int) -> tuple[Tensor, Tensor]:
    """Recipe 1.4, the released `rmi_lower_bound` pooling, verbatim."""
    if k == 1:
        return onehot, probs
    if pool == "avg":
        return F.avg_pool2d(onehot, k, k, k // 2), F.avg_pool2d(probs, k, k, k // 2)
    if pool == "max":
        return F.max_pool2d(onehot, k, k, k // 2), F.max_pool2d(probs, k, k, k // 2)
    size = (onehot.shape[2] // k, onehot.shape[3] // k)
    return (
        F.interpolate(onehot, size=size, mode="nearest"),
        F.interpolate(probs, size=size, mode="bilinear", align_corners=True),
    )


def region_value(y: Tensor, p: Tensor, radius: int) -> Tensor:
    """0.5 * logdet(M) / R^2 for one (image, class): maps y, p of shape (H', W')."""
    h = y.shape[0] - radius + 1
    w = y.shape[1] - radius + 1
    ys, ps = [], []
    for dy in range(radius):
        for dx in range(radius):
            ys.append(y[dy : dy + h, dx : dx + w].reshape(-1))
            ps.append(p[dy : dy + h, dx : dx + w].reshape(-1))
    yv = torch.stack(ys)
    pv = torch.stack(ps)
    yv = yv - yv.mean(1, keepdim=True)
    pv = pv - pv.mean(1, keepdim=True)
    eye = torch.eye(radius * radius, dtype=torch.float64)
    syy, spp, syp = yv @ yv.T, pv @ pv.T, yv @ pv.T
    m = syy - syp @ torch.linalg.inv(spp + POS_ALPHA * eye) @ syp.T + POS_ALPHA * eye
    chol = torch.linalg.cholesky(m)
    logdet = 2.0 * torch.log(torch.diagonal(chol) + 1e-8).sum()
    return 0.5 * logdet / (radius * radius)


def rmi_parts(
    logits: Tensor,
    labels: Tensor,
    *,
    radius: int,
    pool: str,
    pool_size: int,
    ignore_index: int = 255,
) -> tuple[Tensor, Tensor]:
    """(BCE term, per-(image, class) RMI (B, C)) in float64."""
    x = logits.double()
    batch, classes = x.shape[:2]
    valid, onehot = valid_and_onehot(labels, classes, ignore_index)
    mask = valid.unsqueeze(1).double()
    bce_terms = F.binary_cross_entropy_with_logits(x, onehot, reduction="none") * mask
    bce = bce_terms.sum() / (valid.sum() + 1.0)
    probs = torch.sigmoid(x) * mask + 1e-6
    onehot, probs = pool_pair(onehot, probs, pool, pool_size)
    per_class = torch.zeros(batch, classes, dtype=torch.float64)
    for b in range(batch):
        for c in range(classes):
            per_class[b, c] = region_value(onehot[b, c], probs[b, c], radius)
    return bce, per_class


def rmi_loss(
    logits: Tensor,
    labels: Tensor,
    *,
    radius: int = 3,
    pool: str = "avg",
    pool_size: int = 4,
    weight_lambda: float = 0.5,
    lambda_way: int = 1,
    ignore_index: int = 255,
) -> Tensor:
    bce, per_class = rmi_parts(
        logits, labels, radius=radius, pool=pool, pool_size=pool_size, ignore_index=ignore_index
    )
    rmi = per_class.mean(0).sum()
    if lambda_way == 1:
        return weight_lambda * bce + (1 - weight_lambda) * rmi
    return bce + weight_lambda * rmi


def affinity_loss(
    logits: Tensor,
    labels: Tensor,
    *,
    kld_margin: float = 3.0,
    lambda_edge: float = 1.0,
    lambda_non_edge: float = 1.0,
    decay_base: float = 20.0,
    downsample: int = 8,
    progress: float = 0.0,
    ignore_index: int = 255,
) -> float:
    """Ke et al.'s loss with pairs touching an ignored pixel masked out; plain Python loops."""
    x = logits.double()
    batch, classes, height, width = x.shape
    valid = (labels >= 0) & (labels < classes) & (labels != ignore_index)
    target = torch.where(valid, labels, -100)
    ce = F.cross_entropy(x, target, ignore_index=-100, reduction="sum") / max(int(valid.sum()), 1)
    coded = torch.where(valid, labels, classes).double().unsqueeze(1)
    if downsample > 1:
        size = (height // downsample, width // downsample)
        coded = F.interpolate(coded, size=size, mode="nearest")
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
    lab = coded[:, 0].long().tolist()
    prob = torch.softmax(x, 1).tolist()
    edges, non_edges = [], []
    for b in range(batch):
        _pair_terms(lab[b], prob[b], kld_margin, edges, non_edges)
    edge = sum(edges) / len(edges) if edges else 0.0
    non_edge = sum(non_edges) / len(non_edges) if non_edges else 0.0
    decay = decay_base ** (-progress)
    return float(ce) + decay * (lambda_edge * edge + lambda_non_edge * non_edge)


def _pair_terms(
    lab: list, prob: list, kld_margin: float, edges: list[float], non_edges: list[float]
) -> None:
    """Append the edge hinges and non-edge KLs of one image's valid 8-neighbour pairs."""
    classes, h, w = len(prob), len(lab), len(lab[0])
    for i in range(h):
        for j in range(w):
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    ni, nj = i + di, j + dj
                    if (di, dj) == (0, 0) or not (0 <= ni < h and 0 <= nj < w):
                        continue
                    a, n = lab[i][j], lab[ni][nj]
                    if a >= classes or n >= classes:
                        continue
                    for c in range(classes):
                        kl = _binary_kl(prob[c][ni][nj], prob[c][i][j])
                        if (a == c) != (n == c):
                            edges.append(max(0.0, kld_margin - kl))
                        else:
                            non_edges.append(kl)


def _binary_kl(q: float, p: float) -> float:
    """KL(q || p) of two Bernoulli distributions, every probability clipped to [1e-4, 1]."""

    def clip(v: float) -> float:
        return min(max(v, 1e-4), 1.0)

    qc, pc, nq, np_ = clip(q), clip(p), clip(1.0 - q), clip(1.0 - p)
    return qc * math.log(qc / pc) + nq * math.log(nq / np_)
