"""`rmi figure` (qualitative, curves, ablation) and `rmi report`: pictures of stored results."""

from __future__ import annotations

from pathlib import Path

import typer

from rmi_cli import runner
from rmi_cli.cli.console import out_console
from rmi_cli.cli.options import DbOption, RunsDirOption, open_db
from rmi_cli.runner.figures import Pick

ExperimentFlag = typer.Option(..., "--experiment", "-e", help="Experiment name.")
OutputFlag = typer.Option(
    None,
    "--output",
    "-o",
    help="Where to write (PNG, and the SVG beside it). Default: figures/<experiment>-<kind>.png",
    show_default=False,
)


def register(app: typer.Typer) -> None:
    figure_app = typer.Typer(
        help="Figures of an experiment (PNG and SVG).\n\nExample: rmi figure curves -e quickstart"
    )
    figure_app.command("qualitative")(figure_qualitative)
    figure_app.command("curves")(figure_curves)
    figure_app.command("ablation")(figure_ablation)
    app.add_typer(figure_app, name="figure")
    app.command()(report)


def _wrote(paths: list[Path]) -> None:
    out_console().print("\n".join(str(p) for p in paths), markup=False)


def figure_qualitative(
    experiment: str = ExperimentFlag,
    runs: str = typer.Option(
        ..., "--runs", help="Runs or methods to compare, baseline first: --runs ce,rmi."
    ),
    images: int = typer.Option(4, "--images", "-n", help="How many images (rows)."),
    pick: Pick = typer.Option(
        "first",
        "--pick",
        help="first (the split's first N) or biggest-gain (half where the last run gains most "
        "over the first, half where it loses most).",
    ),
    split: str | None = typer.Option(None, help="Split (default: the only one evaluated)."),
    output: Path | None = OutputFlag,
    runs_root: Path | None = RunsDirOption,
    db: str | None = DbOption,
) -> None:
    """The paper's Figure 2: image, ground truth and each run's prediction in the dataset's
    colours, from saved probabilities or by running the checkpoints on the chosen images.

    Example: rmi figure qualitative -e quickstart --runs ce,rmi --pick biggest-gain -n 4
    """
    database = open_db(db, create=False, read_only=True)
    refs = [ref.strip() for ref in runs.split(",") if ref.strip()]
    _wrote(runner.draw_qualitative(
        database, experiment, refs, count=images, pick=pick, split=split, runs_dir=runs_root,
        output=output,
    ))  # fmt: skip


def figure_curves(
    experiment: str = ExperimentFlag, output: Path | None = OutputFlag, db: str | None = DbOption
) -> None:
    """Training loss and learning rate against iteration, one panel per method, every seed a
    thin line.

    Example: rmi figure curves -e quickstart -o curves.png
    """
    database = open_db(db, create=False, read_only=True)
    _wrote(runner.draw_curves(database, experiment, output=output))


def figure_ablation(
    experiment: str = ExperimentFlag,
    x: str | None = typer.Option(
        None, "--x", help="Grid key on the x axis (default: loss.pool_size when it is one)."
    ),
    split: str | None = typer.Option(None, help="Split (default: the only one evaluated)."),
    output: Path | None = OutputFlag,
    db: str | None = DbOption,
) -> None:
    """mIoU against the downsampling factor, one line per pooling way or region size (paper
    Table 3), error bars from each cell's bootstrap interval.

    Example: rmi figure ablation -e voc-table3a
    """
    database = open_db(db, create=False, read_only=True)
    _wrote(runner.draw_ablation(database, experiment, x=x, split=split, output=output))


def report(
    experiment: str = ExperimentFlag,
    output: Path = typer.Option(Path("report"), "--output", "-o", help="Folder for index.html."),
    images: int = typer.Option(4, "--images", "-n", help="Images in the qualitative figure."),
    qualitative: bool = typer.Option(
        True,
        "--qualitative/--no-qualitative",
        help="Draw the qualitative figure (it may run the checkpoints on a few images).",
    ),
    runs_root: Path | None = RunsDirOption,
    db: str | None = DbOption,
) -> None:
    """One self-contained HTML page for an experiment: its tables with paired bootstrap
    intervals, every figure, the protocol and environment of every number, and the commands
    that made them. Opens from disk, without a server.

    Example: rmi report -e quickstart -o report/
    """
    database = open_db(db, create=False, read_only=True)
    page = runner.write_report(
        database, experiment, output, runs_dir=runs_root, qualitative=qualitative, images=images
    )
    out_console().print(str(page), markup=False)
