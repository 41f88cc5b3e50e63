"""CLI fixtures: the tiny experiment trained once per session with `rmi ablate` on a real SQLite
file (copied for every test that changes it), and `rmi` run in-process with output captured."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from cli_kit import (
    EXPERIMENT,
    REPO,
    TINY_MANIFEST,
    Result,
    Rmi,
    Workspace,
    copy_workspace,
    fill_with_made_up_results,
)

from rmi_cli.cli.app import run

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need the trained experiment are `slow` (it trains once per session)."""
    for item in items:
        if item.path.is_relative_to(HERE) and "trained" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread for the in-process runs: tiny models gain nothing from more, and on
    busy shared cores OpenMP's spinning threads slow them down several times."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's $RMI_DB or writes ./rmi.db outside its own folder."""
    monkeypatch.delenv("RMI_DB", raising=False)
    monkeypatch.delenv("RMI_RUNS_DIR", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")  # the width of piped tables (read once per process)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def rmi(capsys: pytest.CaptureFixture[str]) -> Rmi:
    """`rmi("table", "-e", "tiny")` -> Result(exit code, stdout, stderr), run in-process."""

    def invoke(*args: str | Path) -> Result:
        capsys.readouterr()
        code = run([str(arg) for arg in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


@pytest.fixture(scope="session")
def trained_ablate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Result]:
    """`rmi ablate` of the tiny experiment, once: the shared, read-only starting point."""
    root = tmp_path_factory.mktemp("trained")
    manifest = root / "tiny.yaml"
    manifest.write_text(TINY_MANIFEST)
    space = Workspace(root, manifest, root / "rmi.db")
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(out), redirect_stderr(err):
        patch.delenv("RMI_DB", raising=False)
        patch.delenv("RMI_RUNS_DIR", raising=False)
        patch.setenv("NO_COLOR", "1")
        patch.setenv("COLUMNS", "200")
        code = run(["ablate", str(manifest), "-e", EXPERIMENT, "--db", str(space.db)])
    return space, Result(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def trained(trained_ablate: tuple[Workspace, Result]) -> Workspace:
    """The trained tiny experiment; tests must not change it (use `workspace` to write)."""
    space, result = trained_ablate
    assert result.code == 0, str(result)
    return space


@pytest.fixture
def workspace(trained: Workspace, tmp_path: Path) -> Workspace:
    """A private copy of the trained experiment for a test that changes it."""
    return copy_workspace(trained, tmp_path / "copy")


@pytest.fixture(scope="session")
def paper_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """voc-table1, voc-table3a and voc-table3b of the shipped manifest, queued by `rmi ablate
    --workers 0`, with made-up VOC val results stored as a worker would (nothing is trained)."""
    db = tmp_path_factory.mktemp("paper") / "rmi.db"
    for experiment in ("voc-table1", "voc-table3a", "voc-table3b"):
        args = ["ablate", str(REPO / "experiments.yaml"), "-e", experiment, "--workers", "0"]
        assert run([*args, "--db", str(db)]) == 0
    fill_with_made_up_results(db)
    return db
