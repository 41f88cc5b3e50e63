"""Training augmentation and normalisation (recipe section 4), on any device.

Order as in the recipe and the released code: random scale (image bicubic, label nearest), pad
to the crop size with the mean colour and the ignore label, random crop, random horizontal flip.

Two choices keep results reproducible and the pipeline cheap:
- The random numbers are drawn from a CPU `torch.Generator`, four per sample in a fixed order,
  whatever the tensors' device: the same generator state gives the same scale, crop and flip on
  the CPU and on a GPU.
- The scaled image is rounded to integers and the padding colour is the mean rounded to integers,
  as in the released code, whose PIL pipeline works on uint8 images (exact for the built-in
  datasets, whose means are integers). So an augmented image is exactly representable in uint8
  and loader workers ship a quarter of the bytes that float32 would take.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rmi_cli.constants import IGNORE_INDEX


@dataclass(frozen=True)
class AugmentParams:
    """One sample's random choices."""

    scale: float
    top_fraction: float  # in [0, 1): where the crop starts within the slack
    left_fraction: float
    flip: bool


def draw_params(
    generator: torch.Generator,
    *,
    scales: Sequence[float] | None,
    scale_range: tuple[float, float] | None,
    flip: bool,
) -> AugmentParams:
    """Four uniforms from a CPU generator: scale, crop row, crop column, flip."""
    if generator.device.type != "cpu":
        raise ValueError(
            "train_augment draws its random numbers on the CPU, so that a seed gives the same "
            f"crops on every device; pass a CPU torch.Generator, not one on {generator.device}"
        )
    uniforms = torch.rand(4, generator=generator, dtype=torch.float64).tolist()
    u_scale, u_top, u_left, u_flip = uniforms
    scale = 1.0
    if scales:
        scale = float(scales[min(int(u_scale * len(scales)), len(scales) - 1)])
    elif scale_range is not None:
        low, high = scale_range
        scale = low + (high - low) * u_scale
    return AugmentParams(scale, u_top, u_left, flip and u_flip < 0.5)


def augment_uint8(
    image: torch.Tensor,
    label: torch.Tensor,
    params: AugmentParams,
    *,
    crop_size: int,
    mean: Sequence[float],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale, pad, crop and flip: uint8 (3, crop, crop) image and uint8 (crop, crop) label."""
    height, width = image.shape[-2:]
    new_h, new_w = max(1, round(height * params.scale)), max(1, round(width * params.scale))
    top = int(params.top_fraction * (max(new_h, crop_size) - crop_size + 1))
    left = int(params.left_fraction * (max(new_w, crop_size) - crop_size + 1))
    rows = slice(top, min(top + crop_size, new_h))
    cols = slice(left, min(left + crop_size, new_w))
    scaled = _resize_image(image, new_h, new_w)[:, rows, cols]
    label_rows = _nearest_indices(height, new_h, rows, label.device)
    label_cols = _nearest_indices(width, new_w, cols, label.device)
    out_image = torch.empty((3, crop_size, crop_size), dtype=torch.uint8, device=image.device)
    for channel, value in enumerate(mean):
        out_image[channel].fill_(round(value))
    out_label = torch.full(
        (crop_size, crop_size), IGNORE_INDEX, dtype=torch.uint8, device=label.device
    )
    # Padding goes below and right of the image; the crop only moves where there is slack.
    out_image[:, : scaled.shape[1], : scaled.shape[2]] = scaled
    out_label[: label_rows.numel(), : label_cols.numel()] = label[label_rows][:, label_cols]
    if params.flip:
        out_image, out_label = out_image.flip(-1), out_label.flip(-1)
    return out_image, out_label


def train_augment(
    image: torch.Tensor,
    label: torch.Tensor,
    *,
    crop_size: int,
    scales: Sequence[float] | None = None,
    scale_range: tuple[float, float] | None = None,
    flip: bool = True,
    mean: Sequence[float],
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One training sample: float32 (3, crop, crop) in 0-255 and int64 (crop, crop) labels.

    `image` is uint8 (3, H, W), `label` uint8 (H, W) (void 255), on any device; `generator` is a
    CPU generator (see the module docstring). Give `scales` (a discrete set) or `scale_range`
    (uniform [low, high]) or neither (no scaling).
    """
    params = draw_params(generator, scales=scales, scale_range=scale_range, flip=flip)
    out_image, out_label = augment_uint8(image, label, params, crop_size=crop_size, mean=mean)
    return out_image.float(), out_label.long()


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(x - mean) / std per RGB channel; `images` is (..., 3, H, W) in 0-255, any dtype.

    Channel by channel with Python scalars: a (3,) tensor of means would be a host-to-device
    copy, which waits for the GPU to finish its queued work and so stalls the pipeline.
    """
    out = torch.empty(images.shape, dtype=torch.float32, device=images.device)
    for channel in range(3):
        torch.sub(images[..., channel, :, :], mean[channel], out=out[..., channel, :, :])
        out[..., channel, :, :].div_(std[channel])
    return out


def _resize_image(image: torch.Tensor, new_h: int, new_w: int) -> torch.Tensor:
    if (new_h, new_w) == tuple(image.shape[-2:]):
        return image
    # Float bicubic (uint8 bicubic is CPU-only and rounds differently); antialias off as in
    # OpenCV's INTER_CUBIC, then clamp the overshoot and round, as a uint8 pipeline would.
    scaled = F.interpolate(
        image[None].float(), size=(new_h, new_w), mode="bicubic", align_corners=False
    )[0]
    return scaled.clamp_(0.0, 255.0).round_().to(torch.uint8)


def _nearest_indices(size: int, new_size: int, window: slice, device: torch.device) -> torch.Tensor:
    """Source indices of output positions `window` when `size` is resized to `new_size`.

    Pixel centres map as in bicubic with align_corners=False (PyTorch's "nearest-exact"), so
    labels stay aligned with the image; computed by hand so that uint8 labels work on any device,
    and on the device itself: no host-to-device copy (see `normalize`).
    """
    positions = torch.arange(window.start, window.stop, dtype=torch.float64, device=device)
    source = ((positions + 0.5) * (size / new_size)).floor_().clamp_(max=size - 1)
    return source.long()
