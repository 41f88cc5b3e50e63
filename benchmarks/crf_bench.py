"""Dense-CRF throughput: images/s at 1, 5 and 10 mean-field iterations for 1..P processes.

Runs the project's `crf_steps` (the paper's settings) on CamVid images in a pool of P spawned
processes, one thread each, and prints images/s with the speed-up over one process (target:
>= 0.8 x P up to the number of cores). Workers are started and warmed before the clock starts,
so the table measures the CRF's scaling, not process start-up; the last row runs the real
`run_crf` end to end (start-up, file I/O and cache writes included) for comparison.

Probability maps are the labels plus noise (`probabilities_from_labels`), or the saved
probabilities of a run (`--probs workdir/probs/test`). Example:

    python benchmarks/crf_bench.py ../shared/data/camvid --images 96 --processes 1,2
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np
from PIL import Image

from rmi_cli.config import CRFConfig, DataConfig
from rmi_cli.crf import crf_steps, probabilities_from_labels

NUM_CLASSES = 11  # CamVid; label 11 is void


def parse_args() -> argparse.Namespace:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    default = sorted({1, *(p for p in (2, 4, 8, 16, 32) if p < cores), cores})
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="CamVid folder (train.txt, test/, testannot/)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--images", type=int, default=96, help="first N images of the split")
    parser.add_argument("--processes", default=",".join(map(str, default)))
    parser.add_argument("--iters", default="1,5,10")
    parser.add_argument("--probs", type=Path, help="saved probabilities (index.json + .npy)")
    parser.add_argument("--no-end-to-end", action="store_true", help="skip the run_crf row")
    return parser.parse_args()


def prepare(args: argparse.Namespace, folder: Path) -> list[tuple[Path, Path]]:
    """(image path, fp16 probabilities path) for the first N images of the split."""
    pairs = [line.split() for line in (args.root / f"{args.split}.txt").read_text().splitlines()]
    inputs = []
    for image_rel, label_rel in pairs[: args.images]:
        name = Path(image_rel).stem
        if args.probs is not None:
            inputs.append((args.root / image_rel, args.probs / f"{name}.npy"))
            continue
        label = np.array(Image.open(args.root / label_rel))
        probs = probabilities_from_labels(label, NUM_CLASSES, margin=1.0, noise=1.5, seed=0)
        np.save(folder / f"{name}.npy", probs.astype(np.float16))
        inputs.append((args.root / image_rel, folder / f"{name}.npy"))
    return inputs


def _init_worker() -> None:
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = "1"
    import pydensecrf.densecrf  # noqa: F401  (imported before the clock starts)


def _warm(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _one_image(job: tuple[Path, Path, tuple[int, ...]]) -> float:
    """Read one image and its probabilities, run the CRF; returns the CRF's own seconds."""
    image_path, probs_path, iterations = job
    image = np.array(Image.open(image_path).convert("RGB"))
    probs = np.load(probs_path)
    return crf_steps(probs, image, iterations=iterations)[-1].seconds


def measure(inputs: list[tuple[Path, Path]], processes: int, iterations: tuple[int, ...]) -> dict:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context, initializer=_init_worker) as pool:
        # Busy sleepers force every process to start (the pool starts them on demand).
        pids = {f.result() for f in [pool.submit(_warm, 0.5) for _ in range(processes)]}
        assert len(pids) == processes, pids
        started = time.perf_counter()
        futures = [pool.submit(_one_image, (*paths, iterations)) for paths in inputs]
        wait(futures)
        elapsed = time.perf_counter() - started
    crf_seconds = [future.result() for future in futures]
    return {"images_s": len(inputs) / elapsed, "crf_ms": statistics.median(crf_seconds) * 1e3}


def end_to_end(args: argparse.Namespace, inputs: list, processes: int) -> dict | None:
    """The real `run_crf` (iterations 1, 5, 10 in one pass) on a copy of the inputs."""
    try:
        from rmi_cli.crf import run_crf
        from rmi_cli.data import build_dataset
    except ImportError as error:
        print(f"end-to-end row skipped: {error}", file=sys.stderr)
        return None
    data_cfg = DataConfig(name="camvid", root=str(args.root))
    class_names = build_dataset(data_cfg, args.split).info.class_names
    with tempfile.TemporaryDirectory() as temp:
        probs_dir = Path(temp)
        for _, probs_path in inputs:
            shutil.copy(probs_path, probs_dir / probs_path.name)
        names = [path.stem for _, path in inputs]
        index = {"names": names, "class_names": list(class_names), "split": args.split}
        (probs_dir / "index.json").write_text(json.dumps(index))
        started = time.perf_counter()
        results = run_crf(
            data_cfg=data_cfg,
            split=args.split,
            probs_dir=probs_dir,
            params=CRFConfig(iters=(1, 5, 10)),
            workers=processes,
            progress=False,
        )
        elapsed = time.perf_counter() - started
    return {"images_s": len(inputs) / elapsed, "crf_ms": results[-1].crf_median_ms}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    args = parse_args()
    counts = [int(p) for p in args.processes.split(",")]
    iteration_sets = [(int(n),) for n in args.iters.split(",")]
    iteration_sets.append(tuple(n for (n,) in iteration_sets))  # all counts in one pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    print(f"# {now}  {cpu_model()}  {cores} cores  Python {platform.python_version()}")
    print(f"# command: python {' '.join(sys.argv)}")
    with tempfile.TemporaryDirectory() as temp:
        inputs = prepare(args, Path(temp))
        height, width = np.load(inputs[0][1]).shape[1:]
        print(f"# {len(inputs)} {args.split} images, {height}x{width}, {NUM_CLASSES} classes")
        rows = []
        for iterations in iteration_sets:
            base = None
            for processes in counts:
                result = measure(inputs, processes, iterations)
                base = base if base is not None else result["images_s"]
                rows.append((iterations, processes, result, result["images_s"] / base))
                print(_row(*rows[-1]), file=sys.stderr, flush=True)
        if not args.no_end_to_end:
            result = end_to_end(args, inputs, max(counts))
            if result is not None:
                rows.append(("run_crf 1,5,10", max(counts), result, None))
    print(_header())
    for row in rows:
        print(_row(*row))


def _header() -> str:
    return (
        "| CRF iterations | processes | images/s | speed-up | per process | CRF ms/image |\n"
        "|---|---:|---:|---:|---:|---:|"
    )


def _row(iterations: object, processes: int, result: dict, speedup: float | None) -> str:
    label = ",".join(map(str, iterations)) if isinstance(iterations, tuple) else iterations
    scaling = "- | -" if speedup is None else f"{speedup:.2f} | {speedup / processes:.2f}"
    return (
        f"| {label} | {processes} | {result['images_s']:.2f} | {scaling} | {result['crf_ms']:.0f} |"
    )


if __name__ == "__main__":
    main()
