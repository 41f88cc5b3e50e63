"""`rmi table`: every kind in every format, --output, and the paper's rows only beside results
on the dataset and split their table belongs to."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from pathlib import Path

import pytest
from cli_kit import EXPERIMENT, REPO, Rmi, Workspace, fill_with_made_up_results

from rmi_cli.cli.app import run

FORMATS = ("rich", "markdown", "latex", "csv", "json")
LATEX = {"&": "\\&", "_": "\\_", "×": "$\\times$"}


def latex(text: str) -> str:
    """`text` as the LaTeX renderer escapes it (the characters these tables use)."""
    return "".join(LATEX.get(char, char) for char in text)


def check_format(fmt: str, text: str, title: str, labels: list[str]) -> None:
    """The output is well-formed in its format and holds the table's title and row labels."""
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [row["label"] for row in rows] == labels
        return
    if fmt == "json":
        table = json.loads(text)
        assert table["title"] == title
        assert [row["label"] for row in table["records"]] == labels
        return
    if fmt == "markdown":
        assert text.startswith(f"**{title}**\n\n| ")
        assert "| :--- |" in text
    elif fmt == "latex":
        assert text.startswith("\\begin{table}")
        assert text.rstrip().endswith("\\end{table}")
        assert f"\\caption{{{latex(title)}}}" in text
    else:
        assert text.startswith(f"{title}\n┏")
    for label in labels:
        assert (latex(label) if fmt == "latex" else label) in text, label


# the tiny runs train from random initialisation, and every row says so
TINY_LABELS = [f"{label} (from scratch)" for label in ("CE", "CE & CRF-1", "RMI")]


@pytest.mark.parametrize("fmt", FORMATS)
def test_methods_table(trained: Workspace, rmi: Rmi, fmt: str) -> None:
    result = rmi("table", "-e", EXPERIMENT, "-k", "methods", "-f", fmt, "--db", trained.db)
    assert result.code == 0, str(result)
    assert result.err == ""
    check_format(fmt, result.out, "tiny: methods on val", TINY_LABELS)


@pytest.mark.parametrize("fmt", FORMATS)
def test_per_class_table(trained: Workspace, rmi: Rmi, fmt: str) -> None:
    result = rmi("table", "-e", EXPERIMENT, "-k", "per-class", "-f", fmt, "--db", trained.db)
    assert result.code == 0, str(result)
    labels = [f"{m} (from scratch)" for m in ("CE", "CE & CRF-1 (best of 1)", "RMI")]
    check_format(fmt, result.out, "tiny: per-class IoU on val", labels)
    for name in ("sky", "road", "person"):
        assert name in result.out


@pytest.mark.parametrize("fmt", FORMATS)
def test_ablation_table(paper_db: Path, rmi: Rmi, fmt: str) -> None:
    result = rmi("table", "-e", "voc-table3a", "-k", "ablation", "-f", fmt, "--db", paper_db)
    assert result.code == 0, str(result)
    title = "voc-table3a: ablation loss.pool × loss.pool_size on val"
    check_format(fmt, result.out, title, ["nearest", "max", "avg"])


def test_grid_experiments_default_to_the_ablation_table(paper_db: Path, rmi: Rmi) -> None:
    result = rmi("table", "-e", "voc-table3a", "-f", "markdown", "--db", paper_db)
    assert result.code == 0, str(result)
    assert result.out.startswith("**voc-table3a: ablation loss.pool × loss.pool_size on val**")
    assert "methods on" not in result.out


@pytest.mark.parametrize("fmt", ["markdown", "latex"])
def test_two_tables_are_separated_by_one_blank_line(trained: Workspace, rmi: Rmi, fmt: str) -> None:
    result = rmi("table", "-e", EXPERIMENT, "-f", fmt, "--db", trained.db)
    assert result.code == 0, str(result)
    first, second = result.out.split("\n\n\\begin" if fmt == "latex" else "\n\n**")
    assert "methods on val" in first and "per-class IoU on val" in second
    assert result.out.endswith("\n") and not result.out.endswith("\n\n")


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_machine_formats_want_one_kind(trained: Workspace, rmi: Rmi, fmt: str) -> None:
    result = rmi("table", "-e", EXPERIMENT, "-f", fmt, "--db", trained.db)
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        f"error: --format {fmt} writes one table and experiment 'tiny' has 2; choose one with "
        f"--kind (methods or per-class)\n"
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_output_file_holds_what_stdout_would(
    trained: Workspace, rmi: Rmi, tmp_path: Path, fmt: str
) -> None:
    args = ("table", "-e", EXPERIMENT, "-k", "methods", "-f", fmt, "--db", trained.db)
    printed = rmi(*args)
    target = tmp_path / f"table.{fmt}"
    result = rmi(*args, "--output", target)
    assert result.code == 0, str(result)
    assert (result.out, result.err) == ("", f"wrote {target}\n")
    if fmt == "rich":  # the file is plain text: no colour codes, the same box drawing
        assert "\x1b[" not in target.read_text()
        assert target.read_text().splitlines()[0].strip() == "tiny: methods on val"
    else:
        assert target.read_text() == printed.out
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no temporary left


def test_output_replaces_a_file_and_refuses_a_folder(
    trained: Workspace, rmi: Rmi, tmp_path: Path
) -> None:
    target = tmp_path / "table.md"
    target.write_text("old")
    args = ("table", "-e", EXPERIMENT, "-k", "methods", "-f", "markdown", "--db", trained.db)
    assert rmi(*args, "-o", target).code == 0
    assert target.read_text().startswith("**tiny: methods on val**")
    result = rmi(*args, "-o", tmp_path)
    assert result.code == 2
    assert result.err == (
        f"error: --output {tmp_path}: is a folder; give a file name such as table.md\n"
    )


def test_output_writes_through_a_symlink_keeps_the_mode_and_refuses_a_fifo(
    trained: Workspace, rmi: Rmi, tmp_path: Path
) -> None:
    """-o wrote by rename: a symlink became a regular file (its target kept the old table), a
    0644 file became 0600 (mkstemp's mode), and a FIFO or a device node was replaced by a file."""
    args = ("table", "-e", EXPERIMENT, "-k", "methods", "-f", "markdown", "--db", trained.db)
    shared = tmp_path / "shared.md"
    shared.write_text("old")
    shared.chmod(0o644)
    link = tmp_path / "latest.md"
    link.symlink_to(shared.name)
    assert rmi(*args, "-o", link).code == 0
    assert link.is_symlink() and shared.read_text().startswith("**tiny: methods on val**")
    assert oct(shared.stat().st_mode & 0o777) == "0o644"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = rmi(*args, "-o", fifo)
    assert result.code == 2
    assert result.err.startswith(f"error: --output {fifo}: is a FIFO, device or socket, not a ")
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_an_ablation_grid_while_one_method_has_no_result_yet(tmp_path: Path, rmi: Rmi) -> None:
    """The normal state while a worker runs: `--rows train.lr` raised "ValueError: nan is not
    in list", because the queued runs came without their grid coordinates."""
    (tmp_path / "m.yaml").write_text(
        "experiments:\n  lr-grid:\n    defaults: {train: {iterations: 10}}\n"
        "    runs: {ce: {loss: {name: ce}}, bce: {loss: {name: bce}}}\n"
        "    grid: {train.lr: [0.01, 0.02]}\n"
    )
    db = tmp_path / "rmi.db"
    assert (
        rmi("ablate", tmp_path / "m.yaml", "-e", "lr-grid", "--workers", "0", "--db", db).code == 0
    )
    fill_with_made_up_results(db, limit=2)  # the two CE runs
    result = rmi("table", "-e", "lr-grid", "-k", "ablation", "--rows", "train.lr", "-f", "csv",
                 "--db", db)  # fmt: skip
    assert result.code == 0, str(result)
    lines = list(csv.DictReader(io.StringIO(result.out)))
    # (the label says "0.01 (from scratch)": these runs read no pretrained weights)
    cells = [(line["method"], line["label"].split()[0], line["miou_n"]) for line in lines]
    assert cells == [("CE", "0.01", "1"), ("CE", "0.02", "1"), ("BCE", "0.01", "0"),
                     ("BCE", "0.02", "0")]  # fmt: skip


def test_reference_rows_beside_voc_val_methods(paper_db: Path, rmi: Rmi) -> None:
    result = rmi("table", "-e", "voc-table1", "-k", "methods", "--reference", "-f", "csv",
                 "--db", paper_db)  # fmt: skip
    assert result.code == 0, str(result)
    rows = list(csv.DictReader(io.StringIO(result.out)))
    paper = [(row["group"], row["label"], row["miou"]) for row in rows if row["source"] == "paper"]
    assert ("DeepLabv3", "RMI (paper)", "78.71") in paper
    assert ("DeepLabv3+", "CE & CRF-1 (paper)", "78.9") in paper
    # Each paper row comes right after our row of the same group and method.
    labels = [row["label"] for row in rows[:4]]
    assert labels == ["CE", "CE (paper)", "BCE", "BCE (paper)"]


def test_no_reference_rows_on_the_wrong_split_or_dataset(
    paper_db: Path, trained: Workspace, rmi: Rmi
) -> None:
    # Table 2 (per-class VOC) is on the test set: VOC val results get no paper rows.
    result = rmi("table", "-e", "voc-table1", "-k", "per-class", "--reference", "-f", "markdown",
                 "--db", paper_db)  # fmt: skip
    assert result.code == 0, str(result)
    assert "(paper)" not in result.out.split("\n\n")[1]
    assert "No paper rows: the paper reports these results in Table 2 (PASCAL VOC 2012 test)" in (
        result.out
    )
    # Synthetic scenes are no dataset of the paper.
    result = rmi("table", "-e", EXPERIMENT, "-k", "methods", "--reference", "-f", "markdown",
                 "--db", trained.db)  # fmt: skip
    assert result.code == 0, str(result)
    assert "(paper)" not in result.out.split("\n\n")[1]
    assert "No paper rows:" in result.out


def test_reference_rows_in_the_ablation_grid(paper_db: Path, rmi: Rmi) -> None:
    result = rmi("table", "-e", "voc-table3a", "--reference", "-f", "csv", "--db", paper_db)
    assert result.code == 0, str(result)
    rows = {row["label"]: row for row in csv.DictReader(io.StringIO(result.out))}
    assert list(rows) == ["nearest", "nearest (paper)", "max", "max (paper)", "avg", "avg (paper)"]
    assert rows["avg (paper)"]["loss.pool_size=4"] == "78.71"
    assert rows["max (paper)"]["loss.pool_size=2"] == ""  # not reported


def test_the_manifest_declares_the_default_tables(tmp_path: Path, rmi: Rmi) -> None:
    """`tables:` entries are stored with the experiment: `rmi table` renders them (title, rows
    and columns as declared), flags replace what they name, and queueing the experiment again
    from its manifest replaces the stored entries."""
    shipped = (REPO / "experiments.yaml").read_text()
    declared = "{kind: ablation, rows: loss.pool, cols: loss.pool_size, split: val}"
    assert declared in shipped
    flipped = "{kind: ablation, rows: loss.pool_size, cols: loss.pool, title: 'Table 3(a)'}"
    manifest, db = tmp_path / "experiments.yaml", tmp_path / "rmi.db"
    manifest.write_text(shipped.replace(declared, flipped))
    args = ["ablate", str(manifest), "-e", "voc-table3a", "--workers", "0", "--db", str(db)]
    assert run(args) == 0
    fill_with_made_up_results(db)

    result = rmi("table", "-e", "voc-table3a", "-f", "csv", "--db", db)
    assert result.code == 0, str(result)
    assert [row["label"] for row in csv.DictReader(io.StringIO(result.out))] == list("23456")
    result = rmi("table", "-e", "voc-table3a", "-f", "markdown", "--db", db)
    assert result.out.startswith("**Table 3(a)**\n"), str(result)

    result = rmi("table", "-e", "voc-table3a", "-f", "csv", "--rows", "loss.pool", "--cols",
                 "loss.pool_size", "--db", db)  # fmt: skip
    assert [row["label"] for row in csv.DictReader(io.StringIO(result.out))] == [
        "nearest", "max", "avg"
    ]  # fmt: skip

    manifest.write_text(shipped)
    assert run([*args[:1], str(manifest), *args[2:]]) == 0
    result = rmi("table", "-e", "voc-table3a", "-f", "markdown", "--db", db)
    assert result.out.startswith("**voc-table3a: ablation loss.pool × loss.pool_size on val**")


def test_an_unknown_baseline_is_refused(trained: Workspace, rmi: Rmi) -> None:
    result = rmi("table", "-e", EXPERIMENT, "--baseline", "XYZ", "--db", trained.db)
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        "error: --baseline 'XYZ': experiment 'tiny' has no such method; its methods: CE, RMI\n"
    )
