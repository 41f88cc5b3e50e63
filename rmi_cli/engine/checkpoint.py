"""Training checkpoints: `checkpoints/iter-<N>.pt` and `last.pt`, written atomically.

A checkpoint is a plain dict of tensors and primitives (so `torch.load(weights_only=True)` reads
it): model and optimiser state, the number of optimiser steps done, every RNG state, the run's
config hash and the model signature (what the weights fit), plus the engine's small loop state.
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from rmi_cli.atomic import atomic_link, atomic_write_bytes
from rmi_cli.config import ModelConfig
from rmi_cli.errors import CheckpointError
from rmi_cli.run_folder import LAST_CHECKPOINT, RunFolder

FORMAT_VERSION = 1
KEEP_CHECKPOINTS = 3  # iter-<N>.pt files kept besides last.pt; older ones are deleted
_ITER_FILE = re.compile(r"iter-(\d+)\.pt")
_TEMP_FILE = re.compile(r"\.(?:iter-\d+|last)\.pt\..+\.tmp")
_REQUIRED_KEYS = ("format", "iteration", "config_hash", "signature", "model")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def model_signature(model: ModelConfig, num_classes: int) -> dict[str, Any]:
    """What a checkpoint's weights fit: architecture, backbone, stem and number of classes.

    The output stride and dropout are left out: they change the computation, not the weights.
    """
    return {
        "model": model.name,
        "backbone": model.backbone,
        "deep_stem": model.deep_stem,
        "num_classes": num_classes,
    }


def describe_signature(signature: dict[str, Any]) -> str:
    stem = ", deep stem" if signature.get("deep_stem") else ""
    return (
        f"{signature.get('model')}/{signature.get('backbone')}{stem} with "
        f"{signature.get('num_classes')} classes"
    )


def checkpoint_dir(workdir: Path) -> Path:
    return RunFolder(Path(workdir)).checkpoints


def save_checkpoint(
    directory: Path, state: dict[str, Any], *, keep: int = KEEP_CHECKPOINTS
) -> Path:
    """Write `state` as `iter-<N>.pt` and `last.pt` in `directory`; return the iter file.

    The state is serialised and written once: `last.pt` is a hard link to the iter file (a
    second copy where the file system has no hard links), and each name is replaced
    atomically, so a crash at any point leaves the previous `last.pt` loadable. Only the newest
    `keep` iter files are kept; temporary files a killed writer left behind are removed.
    """
    iteration = int(state["iteration"])
    buffer = io.BytesIO()
    torch.save({"format": FORMAT_VERSION, **state}, buffer)
    directory = Path(directory)
    iter_path = directory / f"iter-{iteration}.pt"
    atomic_write_bytes(iter_path, buffer.getvalue())
    atomic_link(iter_path, directory / LAST_CHECKPOINT, fallback=buffer.getvalue())
    _prune(directory, keep=max(1, keep))
    return iter_path


def _prune(directory: Path, *, keep: int) -> None:
    numbered = sorted(
        (int(match[1]), path)
        for path in directory.iterdir()
        if (match := _ITER_FILE.fullmatch(path.name))
    )
    # Pruned iter files may be linked from last.pt: unlinking a name keeps the other.
    for _, path in numbered[:-keep]:
        path.unlink(missing_ok=True)
    # One writer per run folder (the job's lease holder), so any temporary file is stale.
    for path in directory.iterdir():
        if _TEMP_FILE.fullmatch(path.name):
            path.unlink(missing_ok=True)


def latest_checkpoint(workdir: Path) -> Path | None:
    """`workdir/checkpoints/last.pt` when it exists."""
    path = RunFolder(Path(workdir)).last_checkpoint
    return path if path.is_file() else None


def load_checkpoint(
    path: Path,
    *,
    signature: dict[str, Any] | None = None,
    config_hash: str | None = None,
) -> dict[str, Any]:
    """Read a checkpoint safely and check that it belongs to the expected model and run."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} does not exist; give the path of a .pt file written by `rmi` "
            f"training (workdir/checkpoints/last.pt)"
        )
    state = _read(path)
    if signature is not None and state["signature"] != signature:
        raise CheckpointError(
            f"checkpoint {path} is foreign: expected weights for {describe_signature(signature)}, "
            f"found {describe_signature(state['signature'])}; use the checkpoint of a run with "
            f"this model and dataset"
        )
    if config_hash is not None and state["config_hash"] != config_hash:
        raise CheckpointError(
            f"checkpoint {path} is foreign: expected a run with config hash {config_hash}, "
            f"found {state['config_hash']}; resume with the original configuration or use a "
            f"fresh work directory"
        )
    return state


def _read(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, zipfile.BadZipFile) as err:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a PyTorch file ({_load_failure(err)}); delete "
            f"it and resume from an older iter-<N>.pt, or start the run again"
        ) from err
    if not isinstance(state, dict) or any(key not in state for key in _REQUIRED_KEYS):
        raise CheckpointError(
            f"checkpoint {path} is not an rmi training checkpoint: expected a dict with keys "
            f"{', '.join(_REQUIRED_KEYS)}; found "
            f"{type(state).__name__ if not isinstance(state, dict) else sorted(state)[:5]}"
        )
    if state["format"] != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format {state['format']}; this version of rmi reads format "
            f"{FORMAT_VERSION}"
        )
    return state


def _load_failure(err: BaseException) -> str:
    """The reason in torch.load's error, on one line.

    A weights_only refusal is a page that opens by suggesting weights_only=False (arbitrary
    code execution: never for a file that does not load safely) and may hold ANSI codes; only
    the unpickler's own reason after "WeightsUnpickler error:" says what was wrong.
    """
    text = _ANSI.sub("", str(err))
    _, marker, reason = text.partition("WeightsUnpickler error:")
    lines = [line.strip() for line in (reason if marker else text).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    # The first sentence says what failed; the next ones are torch's advice (for a refused
    # global: allow-list it, which is not for a checkpoint).
    first = lines[0].split(". ")[0].rstrip(".")
    return f"unsafe or unknown content: {first}" if marker else first


def load_model_weights(model: torch.nn.Module, state: dict[str, Any], path: Path) -> None:
    """Load the checkpoint's model weights strictly, turning a mismatch into CheckpointError."""
    try:
        model.load_state_dict(state["model"], strict=True)
    except RuntimeError as err:
        first_line = str(err).strip().splitlines()[0]
        raise CheckpointError(
            f"checkpoint {path} does not fit the model {type(model).__name__}: {first_line}"
        ) from err
