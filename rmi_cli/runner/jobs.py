"""Executing queued jobs: the one place where the engine (torch) meets the database (SQL).

A worker claims a job, keeps its lease alive from a heartbeat thread, runs it, stores every
result, and marks it done. Failures are stored with the job: one that may pass on another
attempt (memory, disk, network: `failures.may_pass_on_retry`) is retried until its attempts run
out, anything else (bad input, a diverged run, an error of the code itself) fails it at once.
SIGINT/SIGTERM checkpoint the run and give the job back to the queue.

Under torchrun (`options.ranks`) this process is rank 0 of a data-parallel group: it hands each
training job to the other ranks (`engine.distributed.follow`) and trains with them; it alone
talks to the database. Failures every rank sees at the same step (a configuration error, a
diverged loss, a stop) leave the group usable; any other failure inside training (a rank that
died, a data error on one rank's share) may leave the ranks out of step, so the job goes back to
the queue and the group ends (`RanksLost`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from rmi_cli import db as store
from rmi_cli.config import CRFConfig, RunConfig
from rmi_cli.errors import ConfigError, Interrupted, RunFailed, UserError
from rmi_cli.records import EvalResult, TrainMetrics, TrainResult
from rmi_cli.run_folder import RunFolder, probs_index
from rmi_cli.runner.failures import describe_failure, first_line, may_pass_on_retry
from rmi_cli.runner.lookup import run_checkpoint, stored_config
from rmi_cli.runner.preflight import check_datasets

if TYPE_CHECKING:
    from rmi_cli.engine.distributed import Ranks

StopFlag = Callable[[], bool]
log = logging.getLogger(__name__)


class RanksLost(RunFailed):
    """A data-parallel job failed in a way that may leave the ranks out of step: the job went
    back to the queue and this group of processes must end."""


@dataclass(frozen=True)
class WorkerOptions:
    """How this process runs jobs."""

    worker: str  # "host:pid:start:ns" (runner.holders), unique per process
    runs_root: Path  # run folders: <runs_root>/<config hash>/ (rmi_cli.run_folder)
    lease_s: float = store.DEFAULT_LEASE_S
    progress: bool = True
    crf_workers: int | None = None  # CRF processes; None: all cores
    ranks: Ranks | None = None  # rank 0 of a torchrun group: train jobs run on every rank


def run_job(db: store.Database, job: store.Job, options: WorkerOptions, stop: StopFlag) -> None:
    """Execute a claimed job to the end; raise `RunFailed` (stored) or `Interrupted` (released)."""
    with Heartbeat(db, job.id, options.worker, options.lease_s) as beat:
        stop_now = _unless_taken_over(stop, beat, job.label)
        try:
            if job.kind == "crf":
                _crf_job(db, job, options, stop_now)
            else:
                _train_job(db, job, options, stop_now)
        except Interrupted:
            if not beat.is_lost():
                store.release(db, job.id, options.worker)
            raise
        except RanksLost as exc:
            cause = f"{exc}\n{describe_failure(exc.__cause__)}" if exc.__cause__ else str(exc)
            store.fail(db, job.id, options.worker, cause, retry=True)
            raise
        except (UserError, RunFailed) as exc:
            # Bad input and diverged runs fail the same way every time: do not retry them.
            store.fail(db, job.id, options.worker, str(exc), retry=False)
            raise RunFailed(f"run {job.label} failed: {exc}") from None
        except Exception as exc:
            retry = may_pass_on_retry(exc)
            status = store.fail(db, job.id, options.worker, describe_failure(exc), retry=retry)
            again = " (queued again)" if status == "queued" else ""
            why = "" if retry else " (not retried: it would fail the same way; a bug to report?)"
            raise RunFailed(
                f"run {job.label} failed{again}: {type(exc).__name__}: {first_line(exc)}{why} "
                f"(details: rmi status --run {job.config_hash})"
            ) from exc
    if not store.complete(db, job.id, options.worker):
        log.info(f"{job.label}: another worker took this job over; its results were kept")


def _train_job(db: store.Database, job: store.Job, options: WorkerOptions, stop: StopFlag) -> None:
    from rmi_cli.engine import evaluate_run, train_run

    config = stored_config(job.config, job.label)
    # The evaluation split is opened before hours of training: an empty or broken list fails
    # the job now (the train split is opened by training itself).
    check_datasets([(config.data, config.data.eval_split)])
    workdir = RunFolder.of(options.runs_root, job.config_hash).path
    log.info(f"{job.label}: training in {workdir}" + (" (resuming)" if job.reclaimed else ""))

    def record(metrics: TrainMetrics) -> None:
        store.store_metrics(db, job.id, [metrics])

    if options.ranks is None:
        result = train_run(
            config, workdir=workdir, on_metrics=record, should_stop=stop, progress=options.progress
        )
    else:
        result = _train_with_ranks(config, workdir, record, stop, options)
    store.store_train_result(db, job.id, result)
    evaluation = evaluate_run(
        config, checkpoint=Path(result.checkpoint), workdir=workdir, progress=options.progress
    )
    store.store_evaluation(db, job.id, evaluation)
    _announce(job.label, evaluation)


def _train_with_ranks(
    config: RunConfig,
    workdir: Path,
    record: Callable[[TrainMetrics], None],
    stop: StopFlag,
    options: WorkerOptions,
) -> TrainResult:
    from rmi_cli.engine import train_run
    from rmi_cli.engine.distributed import check_batch

    ranks = options.ranks
    assert ranks is not None
    check_batch(config.train.batch_size, ranks.world_size)  # before the others start on it
    ranks.broadcast({"config": config.to_json_dict(), "workdir": str(workdir)})
    try:
        return train_run(
            config,
            workdir=workdir,
            on_metrics=record,
            should_stop=stop,
            progress=options.progress,
            ranks=ranks,
        )
    except (ConfigError, RunFailed, Interrupted):
        raise  # every rank stopped at the same point: the group is still in step
    except Exception as exc:
        raise RanksLost(
            f"{type(exc).__name__}: {exc} (a data-parallel process failed or left; the job "
            f"goes back to the queue and this worker group ends)"
        ) from exc


def _crf_job(db: store.Database, job: store.Job, options: WorkerOptions, stop: StopFlag) -> None:
    from rmi_cli.crf import run_crf

    target = _target(db, job)
    config = stored_config(target.config, target.label)
    split = str(job.config["split"])
    params = CRFConfig.model_validate(job.config["crf"])
    folder = RunFolder.of(options.runs_root, target.config_hash)
    probs_dir = folder.probs(split)
    network = None
    if not probs_index(probs_dir).is_file():
        network = _probabilities(db, target, config, folder, split, options)
    log.info(f"{job.label}: dense CRF ({', '.join(map(str, params.iters))} iterations) on {split}")
    results = run_crf(
        data_cfg=config.data,
        split=split,
        probs_dir=probs_dir,
        params=params,
        workers=options.crf_workers,
        progress=options.progress,
        should_stop=stop,
    )
    for result in results:
        timing = network.timing if network is not None else None
        store.store_crf(db, job.id, result, network_timing=timing)
        log.info(f"{job.label}: CRF-{result.iterations} mIoU {100 * result.scores.miou:.2f}")


def _probabilities(
    db: store.Database,
    target: store.Job,
    config: RunConfig,
    folder: RunFolder,
    split: str,
    options: WorkerOptions,
) -> EvalResult:
    """Evaluate the trained run again, keeping its probabilities (they were not saved)."""
    from rmi_cli.engine import evaluate_run

    checkpoint = run_checkpoint(folder, target.checkpoint_path)
    if not checkpoint.is_file():
        raise UserError(
            f"run {target.label} has no saved probabilities for split {split!r} and no "
            f"checkpoint at {checkpoint}; train it first (rmi worker) or point --runs-dir at "
            f"the folder that holds its run directory {target.config_hash}"
        )
    log.info(f"{target.label}: computing probabilities on {split} for the CRF")
    evaluation = evaluate_run(
        config,
        checkpoint=checkpoint,
        split=split,
        workdir=folder.path,
        save_probs=True,
        progress=options.progress,
    )
    store.store_evaluation(db, target.id, evaluation)
    return evaluation


def _target(db: store.Database, job: store.Job) -> store.Job:
    target = store.get_job(db, job.depends_on_id) if job.depends_on_id is not None else None
    if target is None:
        raise UserError(f"CRF job {job.label} has no trained run to post-process")
    return target


def _announce(label: str, evaluation: EvalResult) -> None:
    timing = evaluation.timing
    speed = f", {timing.median_ms:.1f} ms/image" if timing is not None else ""
    log.info(
        f"{label}: {evaluation.split} mIoU {100 * evaluation.scores.miou:.2f}, "
        f"pixel accuracy {100 * evaluation.scores.pixel_accuracy:.2f}{speed}"
    )


def _unless_taken_over(stop: StopFlag, beat: Heartbeat, label: str) -> StopFlag:
    """`stop`, except that once another worker has taken the job over it raises: the engine
    would checkpoint on a plain stop, and our state, older than the new holder's, would replace
    the run folder's last.pt (the one `rmi eval` and the CRF read) after it finished."""

    def should_stop() -> bool:
        if beat.is_lost():
            raise Interrupted(
                f"run {label}: another worker took this job over (this worker's lease expired "
                f"while it was not heard from); stopped without a checkpoint, the run folder is "
                f"theirs now"
            )
        return stop()

    return should_stop


class Heartbeat:
    """Extends a job's lease every lease_s / 3 seconds from a daemon thread."""

    def __init__(self, db: store.Database, job_id: int, worker: str, lease_s: float) -> None:
        self._db, self._job_id, self._worker = db, job_id, worker
        self._interval = max(lease_s / 3.0, 0.05)
        self._lease_s = lease_s
        self._done = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="rmi-heartbeat", daemon=True)

    def is_lost(self) -> bool:
        """Whether another worker took the job over (our lease had expired)."""
        return self._lost.is_set()

    def _beat(self) -> None:
        while not self._done.wait(self._interval):
            try:
                held = store.heartbeat(self._db, self._job_id, self._worker, lease_s=self._lease_s)
            except Exception as exc:  # a transient database error must not kill the run
                log.warning(f"heartbeat failed ({type(exc).__name__}: {exc}); retrying")
                continue
            if not held:
                self._lost.set()
                return

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()
