"""Training curves: loss and learning rate against iteration, one panel column per method,
every seed a thin line (the mean over seeds drawn thick where there are several), one colour per
model group. Each method's loss has its own scale: RMI's loss is often negative (it is bounded
below by 0.5 ln 5e-4 per class, not by zero), so shared axes would flatten the others."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rmi_cli.report.figures.style import colour, save_figure
from rmi_cli.stored import TrainingPoint

COLUMNS = [f.name for f in dataclasses.fields(TrainingPoint)]


def curves_figure(
    points: Sequence[TrainingPoint], path: str | Path, *, title: str = ""
) -> list[Path]:
    """`points`: the stored training reports (`rmi_cli.db.metric_points`). Writes PNG and SVG;
    returns their paths."""
    frame = pd.DataFrame([dataclasses.astuple(p) for p in points], columns=COLUMNS)
    if frame.empty:
        raise ValueError("no training metrics to plot: the runs have not reported any yet")
    methods = list(dict.fromkeys(frame["method"]))
    groups = list(dict.fromkeys(frame["group"]))
    figure = Figure(figsize=(max(4.0, 2.9 * len(methods)), 4.6), layout="constrained")
    grid = figure.subplots(2, len(methods), sharex=True, squeeze=False)
    for column, method in enumerate(methods):
        mine = frame[frame["method"] == method]
        for row, value in enumerate(("loss", "lr")):
            axes = grid[row][column]
            for index, group in enumerate(groups):
                _plot_seeds(axes, mine[mine["group"] == group], value, colour(index), group)
            axes.grid(alpha=0.3)
            if row == 0:
                axes.set_title(method, fontsize="medium")
            else:
                axes.set_xlabel("iteration")
                axes.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        grid[0][0].set_ylabel("training loss")
        grid[1][0].set_ylabel("learning rate")
    if len(groups) > 1 or groups[0]:
        grid[0][-1].legend(fontsize="x-small")
    if title:
        figure.suptitle(title, fontsize="medium")
    return save_figure(figure, path)


def _plot_seeds(axes: Axes, frame: pd.DataFrame, value: str, hue: str, group: str) -> None:
    seeds = list(dict.fromkeys(frame["run"]))
    for run in seeds:
        one = frame[frame["run"] == run].sort_values("iteration")
        axes.plot(one["iteration"], one[value], color=hue, linewidth=0.8, alpha=0.55)
    if len(seeds) > 1:
        mean = frame.groupby("iteration")[value].mean()
        axes.plot(mean.index, mean.to_numpy(), color=hue, linewidth=2.0, label=f"{group} (mean)")
    elif seeds and group:
        axes.lines[-1].set_label(group)
