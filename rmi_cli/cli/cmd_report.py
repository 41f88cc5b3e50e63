"""`rmi figure` (qualitative, curves, ablation) and `rmi report`: pictures of stored results."""

from __future__ import annotations

from pathlib import Path

import typer

from rmi_cli import db as store
from rmi_cli.cli.app import app
from rmi_cli.cli.console import out_console
from rmi_cli.cli.options import DbOption, RunsDirOption, open_db, runs_dir
from rmi_cli.cli.tables import table_requests
from rmi_cli.errors import UserError

figure_app = typer.Typer(
    help="Figures of an experiment (PNG and SVG).\n\nExample: rmi figure curves -e quickstart"
)
app.add_typer(figure_app, name="figure")

ExperimentFlag = typer.Option(..., "--experiment", "-e", help="Experiment name.")
OutputFlag = typer.Option(
    None, "--output", "-o", help="Where to write (PNG; the SVG goes beside it). "
    "Default: figures/<experiment>-<figure>.png.", show_default=False,
)  # fmt: skip


def _target(output: Path | None, experiment: str, figure: str) -> Path:
    if output is not None and output.is_dir():
        raise UserError(f"--output {output}: is a folder; give a file name such as fig.png")
    return output or Path("figures") / f"{experiment}-{figure}.png"


def _wrote(paths: list[Path]) -> None:
    out_console().print("\n".join(str(p) for p in paths), markup=False)


@figure_app.command("qualitative")
def figure_qualitative(
    experiment: str = ExperimentFlag,
    runs: str = typer.Option(
        ..., "--runs", help="Runs or methods to compare, baseline first: --runs ce,rmi."
    ),
    images: int = typer.Option(4, "--images", "-n", help="How many images (rows)."),
    pick: str = typer.Option(
        "first",
        "--pick",
        help="first (the split's first N) or biggest-gain (half where the "
        "last run gains most over the first, half where it loses most).",
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
    from rmi_cli.cli.figure_data import qualitative_inputs
    from rmi_cli.report.figures.qualitative import qualitative_figure

    database = open_db(db, create=False, read_only=True)
    refs = [ref.strip() for ref in runs.split(",") if ref.strip()]
    data = qualitative_inputs(
        database, experiment, refs, count=images, pick=pick, split=split,
        runs_dir=runs_dir(database, runs_root),
    )  # fmt: skip
    _wrote(qualitative_figure(data, _target(output, experiment, "qualitative")))


@figure_app.command("curves")
def figure_curves(
    experiment: str = ExperimentFlag, output: Path | None = OutputFlag, db: str | None = DbOption
) -> None:
    """Training loss and learning rate against iteration, one panel per method, every seed a
    thin line.

    Example: rmi figure curves -e quickstart -o curves.png
    """
    from rmi_cli.report.figures.curves import curves_figure

    database = open_db(db, create=False, read_only=True)
    points = [p for p in store.metric_points(database, experiment) if p["method"]]
    if not points:
        raise UserError(
            f"experiment {experiment!r} has no training metrics stored yet; train its runs "
            f"first (rmi ablate / rmi worker)"
        )
    path = _target(output, experiment, "curves")
    _wrote(curves_figure(points, path, title=f"{experiment}: training"))


@figure_app.command("ablation")
def figure_ablation(
    experiment: str = ExperimentFlag,
    x: str | None = typer.Option(
        None, "--x", help="Grid key on the x axis (default: loss.pool_size when it varies)."
    ),
    split: str | None = typer.Option(None, help="Split (default: the only one evaluated)."),
    output: Path | None = OutputFlag,
    db: str | None = DbOption,
) -> None:
    """mIoU against the downsampling factor, one line per pooling way or region size (paper
    Table 3), error bars from each cell's bootstrap interval.

    Example: rmi figure ablation -e voc-table3a
    """
    from rmi_cli.report import build_table
    from rmi_cli.report.figures import ablation_figure

    database = open_db(db, create=False, read_only=True)
    records = store.evaluation_rows(database, experiment=experiment)
    runs = store.run_rows(database, experiment=experiment)
    declared = store.experiment_tables(database, experiment)
    requests = [r for r in table_requests(declared, records, None, None) if r.kind == "ablation"]
    if not requests:
        raise UserError(
            f"experiment {experiment!r} has no ablation grid (its runs differ by method, not by "
            f"grid values); rmi figure ablation draws grids such as voc-table3a"
        )
    request = requests[0]
    options = request.options(runs) | ({"split": split} if split else {})
    table = build_table("ablation", records, **options)
    axes = (table.meta["rows"], table.meta["cols"])
    if x is not None and x not in axes:
        raise UserError(
            f"--x {x!r}: not a grid key of this table ({', '.join(filter(None, axes))})"
        )
    x = x or ("loss.pool_size" if "loss.pool_size" in axes else None)
    _wrote(ablation_figure(table, _target(output, experiment, "ablation"), x=x))


@app.command()
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
    path = write_experiment_report(
        open_db(db, create=False, read_only=True), experiment, output,
        runs_root=runs_root, qualitative=qualitative, images=images,
    )  # fmt: skip
    out_console().print(str(path), markup=False)


def write_experiment_report(
    database: store.Database,
    experiment: str,
    output: Path,
    *,
    runs_root: Path | None = None,
    qualitative: bool = True,
    images: int = 4,
) -> Path:
    """Gather the experiment's report and write it to `output/index.html`."""
    from rmi_cli.cli.report_data import report_inputs
    from rmi_cli.report.html import write_report

    if output.exists() and not output.is_dir():
        raise UserError(f"--output {output}: is a file; give a folder for index.html")
    inputs = report_inputs(
        database, experiment, runs_dir=runs_dir(database, runs_root), out_dir=output,
        qualitative=qualitative, images=images,
    )  # fmt: skip
    return write_report(inputs, output)
