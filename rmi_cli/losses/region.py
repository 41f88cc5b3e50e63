"""The region statistics of the RMI loss (recipe 1.5-1.9; paper Eq. 13-15), in float64.

Every (image, class) pair gives N = (H'-R+1)(W'-R+1) points x_n in R^(2d), d = R^2: the label
region vector stacked on the probability region vector (windows `[dy : dy+H'-R+1, dx : ...]`,
(dy, dx) row-major, exactly the released `map_get_pairs`). The released code stacks all 2d
shifted float64 copies of the pooled maps at once (hundreds of MiB at batch 16, and a slow
slice/stack backward). `RegionScatter` builds the same unnormalised scatter matrix
S = sum_n (x_n - m)(x_n - m)^T a band of window rows at a time: the band's region vectors are
copied from strided window views into one reused float64 buffer (im2col), with an extra row of
ones so that the same GEMM also returns the sums, so the float64 copies never exceed
`STATS_CHUNK_BYTES`; the backward is one GEMM and one `F.fold` (col2im) per band. The points are
shifted by the map's mean first (S is shift invariant), so that subtracting the window means at
the end does not cancel digits.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

# Recipe 1.7: the released code's _POS_ALPHA, added to Spp before the inverse and to M.
POS_ALPHA = 5e-4
# Recipe 1.8: added to the Cholesky factor's diagonal before the log.
LOGDET_EPSILON = 1e-8
# Bytes of float64 region vectors materialised at once (forward and backward).
STATS_CHUNK_BYTES = 64 * 2**20


class RegionScatter(torch.autograd.Function):
    """(labels, probs) pooled maps (N, H', W') -> scatter matrices (N, 2d, 2d), float64.

    Rows/columns 0..d-1 belong to the label vectors, d..2d-1 to the probability vectors. Only
    `probs` receives a gradient (labels are data).
    """

    @staticmethod
    def forward(ctx: Any, labels: Tensor, probs: Tensor, radius: int) -> Tensor:
        dim = 2 * radius * radius
        shift = _map_means(labels, probs)
        raw = probs.new_zeros((probs.shape[0], dim + 1, dim + 1), dtype=torch.float64)
        points = _PointBuffer(labels, probs, shift, radius)
        for band in points.bands:
            block = points.fill(band)  # (N, 2d + 1, n): the last row is all ones
            raw.baddbmm_(block, block.transpose(1, 2))
        # The ones row makes the GEMM return the coordinate sums and the count as well.
        sums, count = raw[:, :dim, dim:], raw[:, dim:, dim:]
        means = sums / count
        ctx.radius = radius
        ctx.save_for_backward(labels, probs, shift, means)
        # sum (x - m)(x - m)^T = sum x x^T - N m m^T, with x already shifted near m.
        return raw[:, :dim, :dim] - sums * means.transpose(1, 2)

    @staticmethod
    def backward(ctx: Any, grad_scatter: Tensor) -> tuple[Any, ...]:
        labels, probs, shift, means = ctx.saved_tensors
        if not ctx.needs_input_grad[1]:
            return None, None, None
        radius = ctx.radius
        # dL/dx_n = (G + G^T)(x_n - m); only the probability rows are needed. The last column
        # multiplies the ones row: it subtracts the mean.
        weight = (grad_scatter + grad_scatter.transpose(1, 2))[:, radius * radius :, :]
        weight = torch.cat([weight, -torch.bmm(weight, means)], 2)  # (N, d, 2d + 1)
        grad_probs = torch.zeros(probs.shape, dtype=torch.float64, device=probs.device)
        points = _PointBuffer(labels, probs, shift, radius)
        for top, bottom in points.bands:
            grad_points = torch.bmm(weight, points.fill((top, bottom)))  # (N, d, n)
            rows = bottom - top + radius - 1
            # col2im: each pixel collects the gradients of every window that contains it.
            slab = F.fold(grad_points, (rows, probs.shape[-1]), radius)
            grad_probs[:, top : top + rows] += slab[:, 0]
        return None, grad_probs.to(probs.dtype), None


class _PointBuffer:
    """The shifted region vectors of one band of window rows at a time, in a reused buffer.

    `fill((top, bottom))` returns (N, 2d + 1, (bottom - top) * (W' - R + 1)) float64: d label
    coordinates, d probability coordinates (both (dy, dx) row-major), then a row of ones.
    """

    def __init__(self, labels: Tensor, probs: Tensor, shift: Tensor, radius: int) -> None:
        maps, height, width = probs.shape
        self.maps, self.radius, self.shift = maps, radius, shift
        self.sources = (labels, probs)
        self.out_cols = width - radius + 1
        dim = 2 * radius * radius
        row_bytes = maps * (dim + 1) * self.out_cols * 8
        step = max(1, STATS_CHUNK_BYTES // row_bytes)
        out_rows = height - radius + 1
        self.bands = [(top, min(top + step, out_rows)) for top in range(0, out_rows, step)]
        longest = min(step, out_rows) * self.out_cols
        self.buffer = probs.new_empty((maps, dim + 1, longest), dtype=torch.float64)
        self.buffer[:, dim].fill_(1.0)

    def fill(self, band: tuple[int, int]) -> Tensor:
        top, bottom = band
        radius, dim = self.radius, self.buffer.shape[1] - 1
        rows = slice(top, bottom + radius - 1)
        slab = torch.stack([t[:, rows] for t in self.sources], 1).to(torch.float64) - self.shift
        # (N, 2, rows, W') -> windows (N, 2, R, R, band rows, W' - R + 1) as a view, then one copy.
        windows = slab.unfold(2, radius, 1).unfold(3, radius, 1).permute(0, 1, 4, 5, 2, 3)
        count = (bottom - top) * self.out_cols
        block = self.buffer[:, :, :count]
        block[:, :dim].view(windows.shape).copy_(windows)
        return block


def _map_means(labels: Tensor, probs: Tensor) -> Tensor:
    """Per-map mean (N, 2, 1, 1) float64: the shift that keeps the sums well conditioned."""
    size = probs.shape[-2] * probs.shape[-1]
    means = [t.sum((-2, -1), dtype=torch.float64) / size for t in (labels, probs)]
    return torch.stack(means, 1).view(-1, 2, 1, 1)


def rmi_from_scatter(scatter: Tensor, half: int) -> tuple[Tensor, Tensor]:
    """0.5 * log det(M) / d per matrix (paper Eq. 14, recipe 1.7-1.9) and the fallback count.

    M = Syy - Syp (Spp + a I)^-1 Syp^T + a I with a = 5e-4, its log det from the Cholesky factor
    with +1e-8 on the diagonal. M >= a I, so the result is >= 0.5 * ln(5e-4) = -3.80.
    """
    eye = torch.eye(half, dtype=scatter.dtype, device=scatter.device)
    syy, syp, spp = scatter[:, :half, :half], scatter[:, :half, half:], scatter[:, half:, half:]
    chol_p, failed_p = cholesky_with_fallback(spp + POS_ALPHA * eye)
    # Syp (Spp + aI)^-1 Syp^T = K^T K with K = Lp^-1 Syp^T: a solve, not an explicit inverse.
    k = torch.linalg.solve_triangular(chol_p, syp.transpose(1, 2), upper=False)
    approx_var = syy - k.transpose(1, 2) @ k + POS_ALPHA * eye
    chol_m, failed_m = cholesky_with_fallback(approx_var)
    diag = torch.diagonal(chol_m, dim1=-2, dim2=-1)
    # 0.5 * logdet / d with logdet = 2 * sum(log(diag + 1e-8)).
    return torch.log(diag + LOGDET_EPSILON).sum(-1) / half, failed_p + failed_m


def cholesky_with_fallback(matrices: Tensor) -> tuple[Tensor, Tensor]:
    """Lower Cholesky factors of a batch of symmetric matrices, and how many needed help.

    Every matrix reaching here is >= 5e-4 I in exact arithmetic, so a failure means rounding
    (or non-finite input) broke positive definiteness. Such a matrix is lifted by a constant
    (no gradient) times I, chosen from Gershgorin's bound so that its smallest eigenvalue is at
    least 5e-4, the floor the released code's own jitter guarantees; a non-finite matrix is
    replaced by 5e-4 I (zero gradient). The count stays a tensor: no host synchronisation, and
    torch.compile sees no data-dependent branch. The price is a second factorisation.
    """
    eye = torch.eye(matrices.shape[-1], dtype=matrices.dtype, device=matrices.device)
    with torch.no_grad():
        _, info = torch.linalg.cholesky_ex(matrices)
        failed = info != 0
        finite = torch.isfinite(matrices).flatten(1).all(1).view(-1, 1, 1)
        sym = 0.5 * (matrices + matrices.transpose(-2, -1))
        radius = sym.abs().sum(-1) - sym.diagonal(dim1=-2, dim2=-1).abs()
        lowest = (sym.diagonal(dim1=-2, dim2=-1) - radius).amin(-1)  # <= smallest eigenvalue
        lift = torch.where(failed, (POS_ALPHA - lowest).clamp(min=0.0), 0.0).view(-1, 1, 1)
    repaired = torch.where(finite, matrices + lift * eye, POS_ALPHA * eye)
    chol, _ = torch.linalg.cholesky_ex(repaired)
    return chol, failed.sum()
