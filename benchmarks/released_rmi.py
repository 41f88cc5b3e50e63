"""A faithful re-implementation of the released RMI loss (ZJULearning/RMI, `forward_sigmoid`).

The speed and memory baseline of `loss_bench.py`: the same algorithm, tensor for tensor, as the
authors' code (full-resolution float32 one-hot, BCE with a one-hot target, pooling of both maps,
R^2 stacked shifted windows, float64 via `.double()` instead of `torch.cuda.DoubleTensor` so it
also runs on the CPU, explicit inverse, Cholesky log det). Not part of the library.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

_CLIP_MIN = 1e-6
_POS_ALPHA = 5e-4


def released_rmi_loss(
    logits: Tensor,
    labels: Tensor,
    *,
    num_classes: int,
    radius: int = 3,
    pool: str = "avg",
    pool_size: int = 4,
    weight_lambda: float = 0.5,
    lambda_way: int = 1,
) -> Tensor:
    """BCE + RMI as the released code computes it (labels >= num_classes are ignored)."""
    label_mask = labels < num_classes
    onehot = F.one_hot(labels.long() * label_mask.long(), num_classes=num_classes).float()
    label_mask = label_mask.float()
    mask_flat = label_mask.view(-1)
    onehot = onehot * label_mask.unsqueeze(3)
    onehot_flat = onehot.view(-1, num_classes)
    logits_flat = logits.permute(0, 2, 3, 1).contiguous().view(-1, num_classes)
    valid_pixels = mask_flat.sum()
    binary = F.binary_cross_entropy_with_logits(
        logits_flat, target=onehot_flat, weight=mask_flat.unsqueeze(1), reduction="sum"
    )
    bce = binary / (valid_pixels + 1.0)
    probs = logits.sigmoid() * label_mask.unsqueeze(1) + _CLIP_MIN
    onehot = onehot.permute(0, 3, 1, 2)
    rmi = _lower_bound(onehot, probs, num_classes, radius, pool, pool_size)
    if lambda_way:
        return weight_lambda * bce + (1 - weight_lambda) * rmi
    return bce + weight_lambda * rmi


def _lower_bound(
    labels: Tensor, probs: Tensor, num_classes: int, radius: int, pool: str, k: int
) -> Tensor:
    if k > 1:
        if pool == "max":
            labels = F.max_pool2d(labels, kernel_size=k, stride=k, padding=k // 2)
            probs = F.max_pool2d(probs, kernel_size=k, stride=k, padding=k // 2)
        elif pool == "avg":
            labels = F.avg_pool2d(labels, kernel_size=k, stride=k, padding=k // 2)
            probs = F.avg_pool2d(probs, kernel_size=k, stride=k, padding=k // 2)
        else:
            size = (labels.shape[2] // k, labels.shape[3] // k)
            labels = F.interpolate(labels, size=size, mode="nearest")
            probs = F.interpolate(probs, size=size, mode="bilinear", align_corners=True)
    n, c = labels.shape[:2]
    half_d = radius * radius
    la_vectors, pr_vectors = _map_get_pairs(labels, probs, radius)
    la_vectors = la_vectors.view(n, c, half_d, -1).double().requires_grad_(False)
    pr_vectors = pr_vectors.view(n, c, half_d, -1).double()
    diag = torch.eye(half_d, device=probs.device).unsqueeze(0).unsqueeze(0)
    la_vectors = la_vectors - la_vectors.mean(dim=3, keepdim=True)
    la_cov = torch.matmul(la_vectors, la_vectors.transpose(2, 3))
    pr_vectors = pr_vectors - pr_vectors.mean(dim=3, keepdim=True)
    pr_cov = torch.matmul(pr_vectors, pr_vectors.transpose(2, 3))
    pr_cov_inv = torch.inverse(pr_cov + diag.type_as(pr_cov) * _POS_ALPHA)
    la_pr_cov = torch.matmul(la_vectors, pr_vectors.transpose(2, 3))
    appro_var = la_cov - torch.matmul(la_pr_cov.matmul(pr_cov_inv), la_pr_cov.transpose(-2, -1))
    chol = torch.linalg.cholesky(appro_var + diag.type_as(appro_var) * _POS_ALPHA)
    rmi_now = 0.5 * 2.0 * torch.sum(torch.log(torch.diagonal(chol, dim1=-2, dim2=-1) + 1e-8), -1)
    rmi_per_class = rmi_now.view(-1, num_classes).mean(dim=0).float()
    rmi_per_class = rmi_per_class / float(half_d)
    return rmi_per_class.sum()


def _map_get_pairs(labels: Tensor, probs: Tensor, radius: int) -> tuple[Tensor, Tensor]:
    h, w = labels.shape[2], labels.shape[3]
    new_h, new_w = h - (radius - 1), w - (radius - 1)
    la_ns, pr_ns = [], []
    for y in range(radius):
        for x in range(radius):
            la_ns.append(labels[:, :, y : y + new_h, x : x + new_w])
            pr_ns.append(probs[:, :, y : y + new_h, x : x + new_w])
    return torch.stack(la_ns, dim=2), torch.stack(pr_ns, dim=2)
