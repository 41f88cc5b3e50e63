"""Dense-CRF inference on one image: pydensecrf with the paper's settings (recipe section 2).

The unary is `-log(clip(p, prob_clip, 1))` of the softmax probabilities (pydensecrf's
`unary_from_softmax`), the pairwise terms a Gaussian kernel on position and a bilateral kernel on
position and the original RGB colours, both Potts with pydensecrf's default diagonal kernel and
symmetric normalisation. Several iteration counts share one mean-field run: Q after n steps of
`stepInference` is bit-identical to `inference(n)` (tests/crf check it), so CRF-1, -5 and -10
cost one CRF-10 run instead of three.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral
from types import ModuleType
from typing import cast, overload

import numpy as np

from rmi_cli.config import CRFConfig
from rmi_cli.constants import IGNORE_INDEX
from rmi_cli.errors import DependencyMissing

# The paper's settings (recipe section 2); CRFConfig is frozen, so one shared default is safe.
PAPER_SETTINGS = CRFConfig()

INSTALL_HINT = (
    "pydensecrf is not installed: run `pip install pydensecrf2` (it builds from source in about "
    "75 s and needs a C++ compiler; it imports as `pydensecrf`)"
)


@dataclass(frozen=True)
class CRFLabels:
    """The CRF's labelling after `iterations` mean-field steps, and what it cost."""

    iterations: int
    labels: np.ndarray  # (H, W) uint8, argmax of Q
    seconds: float  # setup + `iterations` steps + this argmax, on one core


def load_pydensecrf() -> tuple[ModuleType, Callable[..., np.ndarray]]:
    """`pydensecrf.densecrf` and `unary_from_softmax`, or a one-line `DependencyMissing`."""
    try:
        import pydensecrf.densecrf as dcrf
        from pydensecrf.utils import unary_from_softmax
    except ImportError as error:
        raise DependencyMissing(INSTALL_HINT) from error
    return dcrf, unary_from_softmax


def iteration_counts(iterations: int | Sequence[int]) -> tuple[int, ...]:
    """Sorted, distinct, positive iteration counts; a ValueError for anything else."""
    if isinstance(iterations, Integral):
        counts: tuple[int, ...] = (int(iterations),)
    else:
        counts = tuple(cast(Sequence[int], iterations))
    if not counts or any(not isinstance(n, Integral) or n < 1 for n in counts):
        raise ValueError(f"CRF iteration counts must be positive integers; found {counts}")
    return tuple(sorted({int(n) for n in counts}))


def crf_steps(
    probs: np.ndarray,
    image: np.ndarray,
    *,
    iterations: int | Sequence[int],
    params: CRFConfig = PAPER_SETTINGS,
) -> list[CRFLabels]:
    """Run mean-field inference once and read the labelling out at each requested count.

    `probs` (C, H, W) softmax probabilities (any float dtype; fp16 is widened to float32 before
    the log), `image` (H, W, 3) uint8 RGB. `params.iters` is ignored: `iterations` decides.
    Times are cumulative per count (CRF-5 includes the setup and all 5 steps) but leave out the
    argmax of the other counts, so each equals what a separate run to that count would cost.
    """
    counts = iteration_counts(iterations)
    dcrf, unary_from_softmax = load_pydensecrf()
    num_classes, height, width = _check_inputs(probs, image)
    started = time.perf_counter()
    # pydensecrf takes the image through a writable C-contiguous buffer (it refuses read-only
    # arrays such as np.asarray of a PIL image), hence the copy when needed.
    rgb = np.require(image, dtype=np.uint8, requirements=["C_CONTIGUOUS", "WRITEABLE"])
    unary = unary_from_softmax(probs.astype(np.float32, copy=False), clip=params.prob_clip)
    crf = dcrf.DenseCRF2D(width, height, num_classes)
    crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    crf.addPairwiseGaussian(sxy=params.gaussian_sxy, compat=params.gaussian_compat)
    crf.addPairwiseBilateral(
        sxy=params.bilateral_sxy,
        srgb=params.bilateral_srgb,
        rgbim=rgb,
        compat=params.bilateral_compat,
    )
    q, scratch1, scratch2 = crf.startInference()
    compute = time.perf_counter() - started
    steps: list[CRFLabels] = []
    done = 0
    for count in counts:
        started = time.perf_counter()
        for _ in range(count - done):
            crf.stepInference(q, scratch1, scratch2)
        done = count
        compute += time.perf_counter() - started
        started = time.perf_counter()
        labels = np.asarray(q).argmax(axis=0).astype(np.uint8).reshape(height, width)
        steps.append(CRFLabels(count, labels, compute + time.perf_counter() - started))
    return steps


@overload
def dense_crf(
    probs: np.ndarray, image: np.ndarray, *, iterations: int, params: CRFConfig = ...
) -> np.ndarray: ...
@overload
def dense_crf(
    probs: np.ndarray, image: np.ndarray, *, iterations: Sequence[int], params: CRFConfig = ...
) -> dict[int, np.ndarray]: ...
def dense_crf(
    probs: np.ndarray,
    image: np.ndarray,
    *,
    iterations: int | Sequence[int],
    params: CRFConfig = PAPER_SETTINGS,
) -> np.ndarray | dict[int, np.ndarray]:
    """CRF labels (H, W) uint8 after `iterations` steps; {count: labels} for several counts."""
    steps = crf_steps(probs, image, iterations=iterations, params=params)
    if isinstance(iterations, Integral):
        return steps[0].labels
    return {step.iterations: step.labels for step in steps}


def _check_inputs(probs: np.ndarray, image: np.ndarray) -> tuple[int, int, int]:
    if probs.ndim != 3 or not np.issubdtype(probs.dtype, np.floating):
        raise ValueError(f"probs must be float (C, H, W); found {probs.dtype} {probs.shape}")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (H, W, 3) RGB; found {image.dtype} {image.shape}")
    num_classes, height, width = probs.shape
    if image.shape[:2] != (height, width):
        raise ValueError(
            f"probabilities are {height}x{width} (HxW) but the image is "
            f"{image.shape[0]}x{image.shape[1]}: they must be the same size"
        )
    if not 1 <= num_classes <= IGNORE_INDEX:
        raise ValueError(f"the CRF labels 1..{IGNORE_INDEX} classes as uint8; found {num_classes}")
    return num_classes, height, width


def probabilities_from_labels(
    label: np.ndarray, num_classes: int, *, margin: float = 1.5, noise: float = 1.5, seed: int = 0
) -> np.ndarray:
    """A stand-in for a network's softmax, for tests and benchmarks: (C, H, W) float32.

    Logits are Gaussian noise (std `noise`) plus `margin` on the true class; void pixels
    (labels >= C) get noise only. Deterministic in `seed`.
    """
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, noise, size=(num_classes, *label.shape)).astype(np.float32)
    rows, cols = np.nonzero(label < num_classes)
    logits[label[rows, cols].astype(np.int64), rows, cols] += margin
    logits -= logits.max(axis=0, keepdims=True)
    probs = np.exp(logits)
    return probs / probs.sum(axis=0, keepdims=True)
