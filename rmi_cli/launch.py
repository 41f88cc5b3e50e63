"""Starting rmi processes elsewhere: under torchrun (one data-parallel process per GPU) and as
batch-system jobs (submitit), and knowing, inside one, which batch job this is. Standard library
only: the CLI decides how to launch before anything heavy is imported.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

# A rank that dies ends the whole group at once (no restarts): its job goes back to the queue.
TORCHRUN_RESTARTS = 0


def launched_by_torchrun() -> bool:
    """Whether this process is one of several that torchrun started."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def torchrun_argv(processes: int, rmi_args: Sequence[str]) -> list[str]:
    """`torchrun --standalone --nproc-per-node N -m rmi_cli ARGS` with this Python (the
    standalone rendezvous picks a free port, so several such groups share a machine)."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={processes}", f"--max-restarts={TORCHRUN_RESTARTS}",
        "-m", "rmi_cli", *rmi_args,
    ]  # fmt: skip


def run_torchrun(processes: int, rmi_args: Sequence[str], gpus: str | None) -> tuple[int, bool]:
    """Run `rmi ARGS` as `processes` data-parallel processes (on the GPUs `gpus`, a
    CUDA_VISIBLE_DEVICES value, when given); return torchrun's exit code and whether we were
    asked to stop. Ctrl-C reaches the whole process group by itself; a SIGTERM sent to this
    process alone is passed on, so both checkpoint the run and give its job back."""
    env = dict(os.environ)
    if gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpus
    process = subprocess.Popen(torchrun_argv(processes, rmi_args), env=env)
    stopped = []

    def forward(number: int, frame: FrameType | None) -> None:
        stopped.append(number)
        if number == signal.SIGTERM:
            process.send_signal(signal.SIGTERM)

    previous = {n: signal.signal(n, forward) for n in (signal.SIGINT, signal.SIGTERM)}
    try:
        return process.wait(), bool(stopped)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def scheduler_job() -> str | None:
    """The batch job this process runs in: "slurm:1234" ("slurm:1234_5" for a task of a job
    array, as submitit names it), "local:4321" under submitit's local executor, else None."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"slurm:{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    if env.get("SLURM_JOB_ID"):
        return f"slurm:{env['SLURM_JOB_ID']}"
    if env.get("SUBMITIT_LOCAL_JOB_ID"):
        return f"local:{env['SUBMITIT_LOCAL_JOB_ID']}"
    return None


@dataclass(frozen=True)
class WorkerJob:
    """What a batch job runs: an ordinary `rmi worker` command line (submitit pickles this by
    reference, so it must live in an importable module and hold plain data)."""

    argv: tuple[str, ...]

    def __call__(self) -> int:
        code = subprocess.run(self.argv, check=False).returncode
        if code != 0:
            raise RuntimeError(f"rmi worker exited with code {code}: see this job's log")
        return code


def parse_time(text: str) -> int:
    """A Slurm time limit in whole minutes (seconds round up), in Slurm's formats: "M", "M:S",
    "H:M:S", "D-H", "D-H:M", "D-H:M:S"; ValueError for anything else."""
    days_text, dash, clock = text.partition("-")
    if not dash:
        days_text, clock = "0", text
    parts = [int(part) for part in clock.split(":")]
    days = int(days_text)
    if not 1 <= len(parts) <= 3 or min([days, *parts]) < 0:
        raise ValueError(text)
    if dash:  # D-H, D-H:M, D-H:M:S
        hours, minutes, seconds = [*parts, 0, 0][:3]
    else:  # M, M:S, H:M:S
        hours, minutes, seconds = ([0, *parts, 0] if len(parts) < 3 else parts)[:3]
        if len(parts) == 1:
            hours, minutes, seconds = 0, parts[0], 0
    total = (days * 24 + hours) * 60 + minutes + (1 if seconds else 0)
    if total < 1:
        raise ValueError(text)
    return total


@dataclass(frozen=True)
class Submission:
    """K batch jobs, each running one `rmi worker` command."""

    worker_argv: tuple[str, ...]
    jobs: int
    folder: str  # submitit's folder: job scripts, pickles and logs
    name: str
    minutes: int
    gpus_per_job: int = 1
    partition: str | None = None  # None: submitit's local executor on this machine

    def submit(self) -> list[Any]:
        """Submit the jobs (one Slurm job array, or local processes); submitit's Job objects."""
        import submitit

        cluster = "local" if self.partition is None else "slurm"
        executor = submitit.AutoExecutor(folder=self.folder, cluster=cluster)
        parameters: dict[str, Any] = {"name": self.name, "timeout_min": self.minutes}
        parameters["tasks_per_node"] = 1  # one `rmi worker`; it starts torchrun itself
        if self.partition is not None:
            parameters |= {"slurm_partition": self.partition, "gpus_per_node": self.gpus_per_job}
        executor.update_parameters(**parameters)
        job = WorkerJob(self.worker_argv)
        with executor.batch():
            jobs = [executor.submit(job) for _ in range(self.jobs)]
        return jobs
