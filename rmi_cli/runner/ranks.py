"""Data-parallel processes: join the group torchrun started (rank 0 leads, the others follow)
and leave cleanly; and `--gpus` / `--gpus-per-job`, which start torchrun themselves."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rmi_cli import db as store
from rmi_cli.errors import Interrupted, RunFailed, UserError
from rmi_cli.launch import launched_by_torchrun, run_torchrun
from rmi_cli.run_folder import runs_root
from rmi_cli.runner.jobs import RanksLost

if TYPE_CHECKING:
    from rmi_cli.engine.distributed import Ranks


@contextlib.contextmanager
def data_parallel() -> Iterator[Ranks | None]:
    """The group torchrun started this process in (None outside torchrun). Rank 0 tells the
    others that no more jobs come when the command ends, unless the group is broken."""
    if not launched_by_torchrun():
        yield None
        return
    from rmi_cli.engine.distributed import join_from_env, leave

    ranks = join_from_env()
    assert ranks is not None
    lost = False
    try:
        yield ranks
    except RanksLost:
        lost = True
        raise
    finally:
        if ranks.is_lead and not lost:
            # A rank that already died makes this fail: there is no one left to tell.
            with contextlib.suppress(RuntimeError):
                ranks.broadcast(None)
        leave(ranks)


def follow(ranks: Ranks) -> None:
    """Train what rank 0 hands out (a rank other than 0 does nothing else)."""
    from rmi_cli.engine.distributed import follow as follow_lead

    follow_lead(ranks)


def parse_gpus(text: str) -> list[str]:
    """`"0,1,2,3"` -> ["0", "1", "2", "3"], with a one-line error for anything else."""
    devices = [part.strip() for part in text.split(",") if part.strip()]
    if not devices or not all(d.isdigit() for d in devices) or len(set(devices)) != len(devices):
        raise UserError(f"--gpus: expected distinct GPU numbers such as 0,1,2,3; found {text!r}")
    return devices


def check_divides(batch_size: int, processes: int, what: str) -> None:
    """Refuse, before anything starts, a global batch that does not split evenly."""
    if batch_size % processes:
        raise UserError(
            f"{what}: train.batch_size {batch_size} does not divide among {processes} "
            f"processes; use a batch that is a multiple of {processes} "
            f"(--set train.batch_size=...) or a number of GPUs that divides {batch_size}"
        )


def worker_args(
    database: store.Database,
    db: str | None,
    runs_dir: Path | None,
    *,
    experiment: str | None,
    max_jobs: int | None,
    wait: bool,
    lease_s: float,
    crf_workers: int | None,
) -> list[str]:
    """`rmi worker` arguments for the processes torchrun starts (`db`: the user's own --db text,
    a URL keeps its password; without it they resolve $RMI_DB or ./rmi.db as this one did)."""
    args = ["worker", "--lease", str(lease_s)]
    args += ["--runs-dir", str(runs_root(runs_dir, database.path))]
    args += ["-e", experiment] if experiment else []
    args += ["--max-jobs", str(max_jobs)] if max_jobs else []
    args += ["--wait"] if wait else []
    args += ["--crf-workers", str(crf_workers)] if crf_workers else []
    return args + (["--db", db] if db else [])


def relaunch(processes: int, rmi_args: Sequence[str], gpus: str | None) -> None:
    """Run `rmi ARGS` again as `processes` data-parallel processes; `RunFailed` when they fail."""
    code, stopped = run_torchrun(processes, rmi_args, gpus)
    if stopped:  # torchrun reports its ranks' exit 130 as a failure (1)
        raise Interrupted(
            f"interrupted: the {processes} data-parallel processes stopped (exit {code}); a run "
            f"they trained was checkpointed and its job given back (rmi status)"
        )
    if code != 0:
        raise RunFailed(
            f"the {processes} data-parallel processes exited with code {code} (their messages "
            f"are above); a job they held went back to the queue (rmi status)"
        )
