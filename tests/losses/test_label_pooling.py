"""Counting labels per pooling cell is bit-identical to pooling the full one-hot map."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rmi_cli.losses.rmi_pixel_terms import Pooling, pool_labels


@pytest.mark.parametrize("pool", ["avg", "max", "nearest"])
@pytest.mark.parametrize("pool_size", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_counts_equal_pooled_one_hot(pool: str, pool_size: int, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(pool_size)
    labels = torch.randint(0, 5, (2, 23, 17), generator=gen)
    labels[torch.rand(labels.shape, generator=gen) < 0.2] = 255
    valid = labels < 4  # 4 classes: label 4 is out of range, 255 ignored
    onehot = F.one_hot(torch.where(valid, labels, 0), 4).permute(0, 3, 1, 2).to(dtype)
    onehot = onehot * valid.unsqueeze(1)
    k = pool_size
    if k == 1:
        expected = onehot
    elif pool == "avg":
        expected = F.avg_pool2d(onehot, k, k, k // 2)
    elif pool == "max":
        expected = F.max_pool2d(onehot, k, k, k // 2)
    else:
        expected = F.interpolate(onehot, size=(23 // k, 17 // k), mode="nearest")
    pooled = pool_labels(labels, valid, 4, Pooling(pool, k), dtype)
    assert pooled.dtype == dtype
    assert torch.equal(pooled, expected)


@pytest.mark.parametrize(("size", "out"), [(513, 128), (360, 72), (97, 16), (10, 3)])
def test_nearest_follows_the_legacy_rule(size: int, out: int) -> None:
    # PyTorch's legacy nearest: src = floor(dst * in / out), the scale rounded to float32.
    scale = torch.tensor(size / out, dtype=torch.float32)
    source = (torch.arange(out, dtype=torch.float32) * scale).floor().long().clamp(max=size - 1)
    k = size // out
    labels = torch.arange(size).remainder(7).view(1, 1, size).expand(1, k, size).contiguous()
    valid = torch.ones_like(labels, dtype=torch.bool)
    pooled = pool_labels(labels, valid, 7, Pooling("nearest", k), torch.float32)
    picked = pooled[0, :, 0].argmax(0)  # the class of each output column
    assert torch.equal(picked, source.remainder(7))
