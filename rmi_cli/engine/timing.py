"""The inference-time protocol and peak-memory helpers.

Protocol (recipe section 6 lists what the released code got wrong): the model is in eval mode
under `torch.inference_mode()`, batch size 1, at least `warmup_images` untimed forward passes
first, and only the forward pass is timed, between two device synchronisations, so neither data
loading nor the argmax nor any file write is inside the timed region.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import torch

from rmi_cli.config import Precision
from rmi_cli.records import InferenceTiming

T = TypeVar("T")


def resolve_precision(precision: Precision, device: torch.device) -> str:
    """ "bf16" or "fp32": `auto` means bf16 autocast on CUDA and fp32 on the CPU."""
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for "bf16", nothing for "fp32"."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(function: Callable[[], T], device: torch.device) -> tuple[T, float]:
    """Run `function` between two device synchronisations; return its result and its ms."""
    synchronize(device)
    start = time.perf_counter()
    result = function()
    synchronize(device)
    return result, (time.perf_counter() - start) * 1000.0


def describe_sizes(sizes: Sequence[tuple[int, int]]) -> str:
    """ "360x480" when every image has that size, else "variable (max HxW)"."""
    unique = sorted(set(sizes))
    if not unique:
        return "none"
    if len(unique) == 1:
        return f"{unique[0][0]}x{unique[0][1]}"
    height = max(h for h, _ in unique)
    width = max(w for _, w in unique)
    return f"variable (max {height}x{width})"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads)"


def summarize_timing(
    times_ms: Sequence[float],
    *,
    warmup_images: int,
    sizes: Sequence[tuple[int, int]],
    device: torch.device,
    precision: str,
) -> InferenceTiming:
    """Median, p90 and mean of per-image forward times, with the protocol in one sentence."""
    if not times_ms:
        raise ValueError("no timed images: cannot summarise inference time")
    input_size = describe_sizes(sizes)
    name = device_name(device)
    sync = "CUDA-synchronised" if device.type == "cuda" else "wall clock"
    # What is timed; the fields beside it say over which images, at what size and precision.
    protocol = f"forward pass only, {sync}, data loading excluded"
    return InferenceTiming(
        median_ms=float(statistics.median(times_ms)),
        p90_ms=float(np.percentile(np.asarray(times_ms, dtype=np.float64), 90)),
        mean_ms=float(statistics.fmean(times_ms)),
        images=len(times_ms),
        warmup_images=warmup_images,
        batch_size=1,
        input_size=input_size,
        device=name,
        precision=precision,
        protocol=protocol,
    )


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak-memory window (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float | None:
    """Peak tensor memory allocated since the last reset, in MiB; None on the CPU."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20
