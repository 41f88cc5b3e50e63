"""`run_crf`: the dense CRF over a split's saved probabilities, in a process pool.

Results do not depend on the pool size: each image is scored on its own and the per-image
confusion matrices are integer sums. Stopping (Ctrl-C or `should_stop`) terminates the pool
(the images in flight, one per process, are dropped) and raises `Interrupted`. Every finished
image is cached (`rmi_cli.crf.cache`), so running the same call again only does the rest; no
partial mIoU is returned, since a score over part of a split is not comparable with anything.

The pool spawns its processes, so a script that calls `run_crf` needs the usual
`if __name__ == "__main__":` guard (the `rmi` command has it).
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np

from rmi_cli.config import CRFConfig, DataConfig
from rmi_cli.constants import BOUNDARY_FRACTION
from rmi_cli.crf.cache import CRFCache, ImageResult, probs_stamp
from rmi_cli.crf.inference import iteration_counts, load_pydensecrf
from rmi_cli.crf.per_image import CRFJob, CRFWorker, init_pool_worker, run_pool_task
from rmi_cli.engine.progress import TrainProgress
from rmi_cli.errors import DataError, Interrupted
from rmi_cli.iou import confusion_counts
from rmi_cli.records import CRFResult, Fingerprint, ImageCounts
from rmi_cli.run_folder import probs_file, probs_index
from rmi_cli.system import usable_cores

_POLL_S = 0.25  # how often the parent checks `should_stop` while the pool works


class _StopRequested(Exception):
    """`should_stop()` returned true."""


def run_crf(
    *,
    data_cfg: DataConfig,
    split: str,
    probs_dir: Path,
    params: CRFConfig,
    workers: int | None = None,
    progress: bool = True,
    should_stop: Callable[[], bool] | None = None,
) -> list[CRFResult]:
    """Dense CRF on every image listed in `probs_dir/index.json`: one result per count in
    `params.iters` (sorted, distinct), with scores over the split and CRF time per image.

    `workers`: processes (default all available cores; 1 runs in this process). Images found in
    the cache keep the scores and times of the call that computed them. Raises
    `DependencyMissing`, `DataError` (no or unreadable index, class counts or sizes that differ
    from the dataset's) and `Interrupted` (finished images stay cached for the next call).
    """
    from rmi_cli.data import build_dataset
    from rmi_cli.engine.fingerprint import environment_fingerprint

    load_pydensecrf()  # fail before any image is read or any process started
    probs_dir = Path(probs_dir)
    names, class_names = _read_index(probs_dir, split)
    dataset = build_dataset(data_cfg, split)
    dataset_classes = tuple(dataset.info.class_names)
    where = f"split {split!r} of dataset {dataset.info.name!r}"
    _check_index(probs_dir, names, class_names, dataset_classes, len(dataset), where)
    job = CRFJob(
        data_cfg=data_cfg,
        split=split,
        probs_dir=probs_dir,
        names=names,
        class_names=dataset_classes,
        iterations=iteration_counts(params.iters),
        params=params,
        cache=CRFCache.for_run(probs_dir, data_cfg=data_cfg, split=split, params=params),
    )
    processes = _pool_size(workers, len(names))
    results = _cached_results(job)
    todo = [index for index in range(len(names)) if index not in results]
    _execute(job, todo, results, processes, progress=progress, should_stop=should_stop)
    return _summarise(job, results, processes, environment_fingerprint("cpu"))


def _read_index(probs_dir: Path, split: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    path = probs_index(probs_dir)
    if not path.is_file():
        raise DataError(
            f"{path} not found: no saved probabilities there; run `rmi eval` with saved "
            f"probabilities first (eval.save_probs: true), or let `rmi crf` compute them"
        )
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
        names = tuple(str(name) for name in index["names"])
        class_names = tuple(str(name) for name in index["class_names"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(
            f"{path} is not a probabilities index ({type(error).__name__}: {error}); expected "
            f"JSON with 'names' and 'class_names': save the probabilities again with `rmi eval`"
        ) from error
    if not names:
        raise DataError(f"{path} lists no images: save the probabilities again with `rmi eval`")
    if index.get("split", split) != split:
        raise DataError(
            f"{path} holds probabilities of split {index['split']!r}, not {split!r}: point the "
            f"CRF at the {split!r} probabilities"
        )
    return names, class_names


def _check_index(
    probs_dir: Path,
    names: tuple[str, ...],
    class_names: tuple[str, ...],
    dataset_classes: tuple[str, ...],
    dataset_size: int,
    where: str,
) -> None:
    index = probs_index(probs_dir)
    if len(class_names) != len(dataset_classes):
        raise DataError(
            f"{index}: the probabilities have {len(class_names)} classes but {where} has "
            f"{len(dataset_classes)}: they belong to another dataset"
        )
    if len(names) > dataset_size:
        raise DataError(
            f"{index} lists {len(names)} images but {where} has {dataset_size}: they belong to "
            f"another split"
        )
    for name in names:
        path = probs_file(probs_dir, name)
        if not path.is_file():
            raise DataError(
                f"{path} (listed in {index}) does not exist: save the "
                f"probabilities again with `rmi eval`"
            )


def _pool_size(workers: int | None, images: int) -> int:
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1; found {workers}")
    if workers is None:
        workers = usable_cores()
    return max(1, min(workers, images))


def _cached_results(job: CRFJob) -> dict[int, ImageResult]:
    results = {}
    for index, name in enumerate(job.names):
        stamp = probs_stamp(probs_file(job.probs_dir, name))
        cached = job.cache.load(index, name, job.iterations, stamp)
        if cached is not None:
            results[index] = cached
    return results


def _execute(
    job: CRFJob,
    todo: list[int],
    results: dict[int, ImageResult],
    processes: int,
    *,
    progress: bool,
    should_stop: Callable[[], bool] | None,
) -> None:
    """Fill `results` with the images in `todo`, showing a progress bar over the whole split."""
    stop = should_stop or (lambda: False)
    with TrainProgress(
        total=len(job.names),
        start=len(results),
        enabled=progress,
        label=f"CRF {job.split}",
        metrics=False,
    ) as bar:

        def finished(result: ImageResult) -> None:
            results[result.index] = result
            bar.advance(len(results))

        try:
            if processes == 1:
                _run_here(job, todo, finished, stop)
            else:
                _run_pool(job, todo, processes, finished, stop)
        except (KeyboardInterrupt, _StopRequested):
            raise Interrupted(
                f"CRF on split {job.split!r} stopped after {len(results)} of {len(job.names)} "
                f"images; finished images are cached in {job.cache.folder}: run the same "
                f"command again to do the rest"
            ) from None


def _run_here(
    job: CRFJob,
    todo: Iterable[int],
    finished: Callable[[ImageResult], None],
    stop: Callable[[], bool],
) -> None:
    worker = CRFWorker(job)
    for index in todo:
        if stop():
            raise _StopRequested
        finished(worker(index))


def _run_pool(
    job: CRFJob,
    todo: Iterable[int],
    processes: int,
    finished: Callable[[ImageResult], None],
    stop: Callable[[], bool],
) -> None:
    # Spawned, not forked: forking a parent that has started torch's OpenMP threads or CUDA
    # (the CLI may have just computed the probabilities) can deadlock or crash the children.
    executor = ProcessPoolExecutor(
        max_workers=processes,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=init_pool_worker,
        initargs=(job,),
    )
    queue = iter(todo)
    pending: set[Future[ImageResult]] = set()
    try:
        while True:
            # One image per process in flight: work the executor has queued cannot be cancelled,
            # and a stop should drop at most one unfinished image per process.
            for index in itertools.islice(queue, processes - len(pending)):
                pending.add(executor.submit(run_pool_task, index))
            if not pending:
                return
            if stop():
                raise _StopRequested
            done, pending = wait(pending, timeout=_POLL_S, return_when=FIRST_COMPLETED)
            for future in done:
                finished(future.result())
    except BaseException:
        _terminate(executor)
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _terminate(executor: ProcessPoolExecutor) -> None:
    """Kill the workers now: a stop should not wait for their images (or their start-up, which
    imports torch); what they were doing is lost, but never half-cached (writes are atomic)."""
    terminate_workers = getattr(executor, "terminate_workers", None)  # Python >= 3.14
    if terminate_workers is not None:
        terminate_workers()
        return
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        process.terminate()


def _summarise(
    job: CRFJob, results: dict[int, ImageResult], workers: int, fingerprint: Fingerprint
) -> list[CRFResult]:
    from rmi_cli.metrics import require_labelled, scores_from_confusion

    ordered = [results[index] for index in range(len(job.names))]
    confusion = np.sum([result.confusion for result in ordered], axis=0)  # (K, C, C)
    require_labelled(confusion[0], f"split {job.split!r} of the {job.data_cfg.name} dataset")
    seconds = np.stack([result.seconds for result in ordered])  # (N, K)
    counts = _image_counts(ordered)  # (K, N, 4, C)
    params = job.params.model_dump(exclude={"iters"})
    return [
        CRFResult(
            split=job.split,
            iterations=count,
            num_images=len(ordered),
            scores=scores_from_confusion(
                confusion[k], job.class_names, boundary=counts[k, :, 2:].sum(axis=0)
            ),
            crf_median_ms=float(np.median(seconds[:, k]) * 1e3),
            crf_p90_ms=float(np.percentile(seconds[:, k], 90) * 1e3),
            workers=workers,
            params=params,
            fingerprint=fingerprint,
            image_counts=ImageCounts(job.names, counts[k], BOUNDARY_FRACTION),
        )
        for k, count in enumerate(job.iterations)
    ]


def _image_counts(ordered: list[ImageResult]) -> np.ndarray:
    """(K, N, 4, C) per count and image: IoU counts from the confusion, then boundary counts."""
    confusion = np.stack([result.confusion for result in ordered], axis=1)  # (K, N, C, C)
    boundary = np.stack([result.boundary for result in ordered], axis=1)  # (K, N, 2, C)
    return np.concatenate([confusion_counts(confusion), boundary], axis=2).astype(np.int64)
