"""The figures of an experiment (`rmi figure`): what they draw, gathered from the database and,
for the qualitative figure, from the runs' saved probabilities or by running their checkpoints
on the chosen images (the engine). The figures themselves live in the report layer and see only
records and arrays; each function here writes one figure (PNG + SVG) and returns its paths.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from rmi_cli import db as store
from rmi_cli.config import RunConfig
from rmi_cli.errors import UserError
from rmi_cli.records import ImageCounts
from rmi_cli.run_folder import RunFolder, runs_root
from rmi_cli.runner.lookup import stored_config
from rmi_cli.stored import EvaluationRecord

log = logging.getLogger(__name__)

Pick = Literal["first", "biggest-gain"]
PICKS: tuple[str, ...] = get_args(Pick)


@dataclass(frozen=True)
class Chosen:
    """One run shown as a column: its name, column title, evaluation row and configuration."""

    name: str
    title: str
    row: EvaluationRecord
    config: RunConfig
    config_hash: str


def choose_runs(
    database: store.Database, experiment: str, refs: Sequence[str], split: str | None
) -> list[Chosen]:
    """The runs named by `refs` (run names, or method names: the lowest seed's run), each with
    its plain evaluation on `split` (the only split with results when None)."""
    if len(refs) < 1:
        raise UserError("--runs: name at least one run, e.g. --runs ce,rmi")
    rows = [
        r for r in store.evaluation_rows(database, experiment=experiment)
        if r.postprocess == "none" and (split is None or r.split == split)
    ]  # fmt: skip
    splits = sorted({str(r.split) for r in rows})
    if len(splits) > 1:
        raise UserError(f"results on several splits ({', '.join(splits)}); choose one with --split")
    configs = store.run_configs(database, experiment)
    chosen = [_resolve(ref, rows, experiment) for ref in refs]
    titles = [r.method for r in chosen]
    if len(set(titles)) < len(titles):
        titles = [r.run for r in chosen]
    return [
        Chosen(r.run, title, r, stored_config(configs[r.run], r.run), str(r.config_hash))
        for r, title in zip(chosen, titles, strict=True)
    ]


def _resolve(ref: str, rows: list[EvaluationRecord], experiment: str) -> EvaluationRecord:
    named = [r for r in rows if r.run == ref]
    if not named:
        named = sorted(
            (r for r in rows if r.method.lower() == ref.lower()),
            key=lambda r: (r.seed is None, r.seed or 0, r.run),
        )
    if not named:
        known = ", ".join(sorted({r.run for r in rows})) or "none"
        raise UserError(
            f"--runs: experiment {experiment!r} has no evaluated run or method {ref!r}; its "
            f"evaluated runs: {known}"
        )
    return named[0]


def check_pick(count: int, pick: str) -> None:
    if pick not in PICKS:
        raise UserError(f"--pick {pick!r}: unknown; known: {', '.join(PICKS)}")
    if count < 1:
        raise UserError(f"--images {count}: show at least one image")


def pick_images(chosen: list[Chosen], count: int, pick: str) -> list[tuple[int, str, str]]:
    """(position in the split, name, note) of the images to show."""
    from rmi_cli.report.selection import biggest_gain

    check_pick(count, pick)
    counts = [_counts(c, needed=pick == "biggest-gain") for c in chosen]
    first = counts[0]
    names = first.names if first is not None else ()
    if pick == "first" or len(chosen) < 2:
        if first is None:
            return [(i, "", "") for i in range(count)]
        return [(i, name, "") for i, name in enumerate(names[:count])]
    position = {name: i for i, name in enumerate(names)}
    gains = biggest_gain(first, counts[-1], count)  # type: ignore[arg-type]
    label = f"{chosen[-1].title} − {chosen[0].title}"
    return [(position[name], name, f"{label}: {gain:+.1f}") for name, gain in gains]


def _counts(chosen: Chosen, *, needed: bool) -> ImageCounts | None:
    counts = chosen.row.image_counts
    if counts is None and needed:
        raise UserError(
            f"--pick biggest-gain: run {chosen.name} has no per-image counts (evaluated before "
            f"rmi stored them); re-run rmi eval {chosen.name}, or use --pick first"
        )
    return counts


def predictions_for(
    chosen: Chosen, runs_dir: Path, images: Sequence[Any], dataset_info: Any
) -> tuple[list[Any], str]:
    """The run's label maps for `images`: from its saved probabilities when they hold these
    images, else by running its checkpoint; and a word on which."""
    from rmi_cli.engine.predict import predict_images, saved_predictions

    folder = RunFolder.of(runs_dir, chosen.config_hash)
    split = str(chosen.row.split)
    saved = saved_predictions(folder.probs(split), [i.name for i in images])
    if saved is not None:
        return saved, "saved probabilities"
    checkpoint = folder.last_checkpoint
    if not checkpoint.is_file():
        raise UserError(
            f"run {chosen.name} has no saved probabilities for these images and no checkpoint "
            f"at {checkpoint}; point --runs-dir at the folder holding its run directory "
            f"{chosen.config_hash}"
        )
    log.info("%s: predicting %d images of %s with %s", chosen.name, len(images), split, checkpoint)
    device = chosen.config.train.device
    maps = predict_images(chosen.config, checkpoint=checkpoint, images=images, info=dataset_info)
    return maps, f"inference ({device})"


def qualitative_inputs(
    database: store.Database,
    experiment: str,
    refs: Sequence[str],
    *,
    count: int,
    pick: str,
    split: str | None,
    runs_dir: Path,
) -> Any:
    """The `Qualitative` figure's data: the picked images of the split, their ground truth,
    each chosen run's prediction and per-image mIoU, the dataset's palette."""
    from rmi_cli.engine.predict import split_images
    from rmi_cli.report.figures.qualitative import Qualitative

    check_pick(count, pick)
    chosen = choose_runs(database, experiment, refs, split)
    picked = pick_images(chosen, count, pick)
    where = str(chosen[0].row.split)
    dataset, images = split_images(chosen[0].config.data, where, [(p, n) for p, n, _ in picked])
    maps, sources = {}, []
    for run in chosen:
        maps[run.title], how = predictions_for(run, runs_dir, images, dataset)
        sources.append(f"{run.title} ({run.name}): {how}")
    rows = _rows(chosen, picked, images, maps)
    how_picked = (
        f"the {len(rows)} with the largest per-image mIoU gain and loss of {chosen[-1].title} "
        f"over {chosen[0].title}" if pick == "biggest-gain" and len(chosen) > 1
        else f"the first {len(rows)}"
    )  # fmt: skip
    return Qualitative(
        rows=rows,
        methods=tuple(maps),
        class_names=dataset.class_names,
        palette=dataset.palette,
        void_colour=dataset.void_colour,
        title=f"{experiment}: {' vs '.join(maps)} on {where}",
        caption=f"Images: {how_picked}. Predictions: {'; '.join(sources)}.",
    )


def _rows(
    chosen: list[Chosen], picked: list[tuple[int, str, str]], images: Sequence[Any], maps: dict
) -> tuple[Any, ...]:
    """One figure row per image: its picture, truth, each run's map and per-image mIoU."""
    from rmi_cli.report.figures.qualitative import QualitativeImage
    from rmi_cli.report.selection import per_image_miou

    positions = [p for p, _, _ in picked]
    scores = {run.title: _image_scores(run, positions, per_image_miou) for run in chosen}
    return tuple(
        QualitativeImage(
            image.name,
            image.image,
            image.label,
            {title: maps[title][i] for title in maps},
            {title: values[i] for title, values in scores.items()},
            picked[i][2],
        )
        for i, image in enumerate(images)
    )


def _image_scores(run: Chosen, positions: list[int], per_image: Any) -> list[float]:
    counts = run.row.image_counts
    if counts is None:
        return [float("nan")] * len(positions)
    values = per_image(counts)
    return [float(values[p]) if p < len(values) else float("nan") for p in positions]


def figure_path(output: Path | None, experiment: str, figure: str) -> Path:
    """Where a figure goes: `output`, else figures/<experiment>-<figure>.png."""
    if output is not None and output.is_dir():
        raise UserError(f"--output {output}: is a folder; give a file name such as fig.png")
    return output or Path("figures") / f"{experiment}-{figure}.png"


def draw_qualitative(
    database: store.Database,
    experiment: str,
    refs: Sequence[str],
    *,
    count: int = 4,
    pick: str = "first",
    split: str | None = None,
    runs_dir: Path | None = None,
    output: Path | None = None,
) -> list[Path]:
    """The paper's Figure 2 for `refs` (runs or methods, baseline first); returns [png, svg]."""
    from rmi_cli.report.figures.qualitative import qualitative_figure

    target = figure_path(output, experiment, "qualitative")
    root = runs_root(runs_dir, database.path)
    data = qualitative_inputs(
        database, experiment, refs, count=count, pick=pick, split=split, runs_dir=root
    )
    return qualitative_figure(data, target)


def draw_curves(
    database: store.Database, experiment: str, *, output: Path | None = None
) -> list[Path]:
    """Training loss and learning rate per run, one panel per method; returns [png, svg]."""
    from rmi_cli.report.figures.curves import curves_figure

    target = figure_path(output, experiment, "curves")
    points = [p for p in store.metric_points(database, experiment) if p.method]
    if not points:
        raise UserError(
            f"experiment {experiment!r} has no training metrics stored yet; train its runs "
            f"first (rmi ablate / rmi worker)"
        )
    return curves_figure(points, target, title=f"{experiment}: training")


def draw_ablation(
    database: store.Database,
    experiment: str,
    *,
    x: str | None = None,
    split: str | None = None,
    output: Path | None = None,
) -> list[Path]:
    """mIoU against a grid key (default: the downsampling factor when it is one), one line per
    value of the other, interval error bars; returns [png, svg]."""
    from rmi_cli.report import build_table
    from rmi_cli.report.figures import ablation_figure
    from rmi_cli.report.requests import table_requests

    target = figure_path(output, experiment, "ablation")
    records = store.evaluation_rows(database, experiment=experiment)
    declared = store.experiment_tables(database, experiment)
    requests = [r for r in table_requests(declared, records, None, None) if r.kind == "ablation"]
    if not requests:
        raise UserError(
            f"experiment {experiment!r} has no ablation grid (its runs differ by method, not by "
            f"grid values); rmi figure ablation draws grids such as voc-table3a"
        )
    options = requests[0].options(store.run_rows(database, experiment=experiment))
    table = build_table("ablation", records, **options | ({"split": split} if split else {}))
    axes = (table.meta["rows"], table.meta["cols"])
    if x is not None and x not in axes:
        known = ", ".join(key for key in axes if key)
        raise UserError(f"--x {x!r}: not a grid key of this table ({known})")
    return ablation_figure(table, target, x=x)
