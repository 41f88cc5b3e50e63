"""Forward + backward time and peak extra memory of the losses, against the released RMI code.

    PYTHONPATH=. python3 benchmarks/loss_bench.py --device cuda  # [16,21,513,513], [16,11,360,480]
    PYTHONPATH=. python3 benchmarks/loss_bench.py --device cpu   # [2,21,129,129], [4,11,96,128]

Columns: ce, bce, rmi (ours: BCE + RMI, avg pool 4, R 3), aaf (CE + affinity field);
"released", a faithful re-implementation of the authors' code (`released_rmi.py`) measured on
the same machine; "torch_bce", PyTorch's own BCE with a one-hot target (the yardstick of the
issue's target); with --compile also "rmi_compiled" (torch.compile of ours).

Time: median over `--repeats` runs after `--warmup` runs (CUDA events on CUDA, perf_counter on
the CPU). Memory: peak bytes allocated during one forward + backward beyond what was allocated
before it (the logits' gradient included): torch.cuda.max_memory_allocated on CUDA; on the CPU,
the peak of the CPU allocator's running total as recorded by torch.profiler's memory events
("n/a" where the profiler cannot report it). Needs only torch.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from released_rmi import released_rmi_loss

from rmi_cli.losses import affinity_field_loss, bce_loss, ce_loss, rmi_loss

SHAPES = {
    "cuda": [(16, 21, 513, 513), (16, 11, 360, 480)],
    "cpu": [(2, 21, 129, 129), (4, 11, 96, 128)],
}
LossFn = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def torch_bce(logits: torch.Tensor, labels: torch.Tensor, classes: int) -> torch.Tensor:
    """PyTorch's own sigmoid BCE with a one-hot target: the reference of gpu.md's table."""
    valid = labels < classes
    target = F.one_hot(torch.where(valid, labels, 0), classes).permute(0, 3, 1, 2).float()
    weight = valid.unsqueeze(1).float()
    total = F.binary_cross_entropy_with_logits(logits, target * weight, weight, reduction="sum")
    return total / (valid.sum() + 1)


LOSSES: dict[str, LossFn] = {
    "ce": lambda x, y, c: ce_loss(x, y, num_classes=c),
    "bce": lambda x, y, c: bce_loss(x, y, num_classes=c),
    "rmi": lambda x, y, c: rmi_loss(x, y, num_classes=c),
    "aaf": lambda x, y, c: affinity_field_loss(x, y, num_classes=c),
    "released": lambda x, y, c: released_rmi_loss(x, y, num_classes=c),
    "torch_bce": torch_bce,
}
COMPILED = "rmi_compiled"


def make_inputs(
    shape: tuple[int, int, int, int], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits, and blocky labels (16 x 16 blocks) with a void border, like a padded crop."""
    gen = torch.Generator().manual_seed(0)
    batch, classes, height, width = shape
    blocks = torch.randint(0, classes, (batch, height // 16 + 1, width // 16 + 1), generator=gen)
    labels = blocks.repeat_interleave(16, 1).repeat_interleave(16, 2)[:, :height, :width]
    labels = labels.contiguous()
    labels[:, -height // 10 :] = 255
    logits = torch.randn(shape, generator=gen)
    return logits.to(device), labels.to(device)


def run_once(fn: LossFn, logits: torch.Tensor, labels: torch.Tensor) -> None:
    logits.grad = None
    fn(logits, labels, logits.shape[1]).backward()


def time_ms(
    fn: LossFn, logits: torch.Tensor, labels: torch.Tensor, args: argparse.Namespace
) -> float:
    for _ in range(args.warmup):
        run_once(fn, logits, labels)
    times = []
    for _ in range(args.repeats):
        if logits.is_cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run_once(fn, logits, labels)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            begin = time.perf_counter()
            run_once(fn, logits, labels)
            times.append((time.perf_counter() - begin) * 1e3)
    return statistics.median(times)


def peak_mib(fn: LossFn, logits: torch.Tensor, labels: torch.Tensor) -> float | None:
    logits.grad = None
    if logits.is_cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run_once(fn, logits, labels)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    return cpu_peak_mib(fn, logits, labels)


def cpu_peak_mib(fn: LossFn, logits: torch.Tensor, labels: torch.Tensor) -> float | None:
    """Peak of the CPU allocator's running total during one run, from profiler memory events."""
    from torch.profiler import ProfilerActivity, profile

    try:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            run_once(fn, logits, labels)
        allocation = torch._C._profiler._EventType.Allocation
        events, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
        while stack:
            node = stack.pop()
            if node.tag == allocation:
                fields = node.extra_fields
                events.append((node.start_time_ns, fields.alloc_size, fields.total_allocated))
            stack.extend(node.children)
        if not events:
            return 0.0
        events.sort()
        # The running total is the reporter's, not this run's: start from its value before.
        before = events[0][2] - events[0][1]
        return max(0, max(total for _, _, total in events) - before) / 2**20
    except (AttributeError, RuntimeError):  # private profiler API: report n/a, never guess
        return None


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        card = torch.cuda.get_device_name(device)
    else:
        card = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    day = datetime.date.today().isoformat()
    return f"torch {torch.__version__}, {device.type}: {card}, {day}"


def bench_shape(
    shape: tuple[int, int, int, int], device: torch.device, args: argparse.Namespace
) -> str:
    """Measure every selected loss at one shape; return the markdown table row."""
    logits, labels = make_inputs(shape, device)
    logits.requires_grad_(True)
    with torch.no_grad():
        ours = rmi_loss(logits, labels, num_classes=shape[1]).item()
        released = released_rmi_loss(logits, labels, num_classes=shape[1]).item()
    print(f"{list(shape)}: rmi loss ours {ours:.6f}, released {released:.6f}", flush=True)
    cells = []
    for name in args.losses:
        fn = LOSSES[name]
        ms = time_ms(fn, logits, labels, args)
        mib = peak_mib(fn, logits, labels)
        memory = "n/a" if mib is None else f"+{mib:,.0f} MiB"
        cells.append(f"{ms:,.1f} ms, {memory}")
        print(f"  {name:9s} {cells[-1]}", flush=True)
    return f"| {', '.join(map(str, shape))} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--shape", type=int, nargs=4, action="append", metavar=("B", "C", "H", "W"))
    parser.add_argument("--losses", nargs="+", choices=list(LOSSES), default=list(LOSSES))
    parser.add_argument(
        "--compile", action="store_true", help=f"add {COMPILED}: torch.compile of our RMI loss"
    )
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch default)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.compile:
        compiled = torch.compile(lambda x, y, c: rmi_loss(x, y, num_classes=c), dynamic=False)
        LOSSES[COMPILED] = compiled
        args.losses.append(COMPILED)
    shapes = [tuple(s) for s in args.shape] if args.shape else SHAPES[device.type]
    print(f"# {describe(device)}; command: {' '.join(sys.argv)}", flush=True)
    rows = [bench_shape(shape, device, args) for shape in shapes]
    print(f"\n| shape [B, C, H, W] | {' | '.join(args.losses)} |")
    print("|---" * (len(args.losses) + 1) + "|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
