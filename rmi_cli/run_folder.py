"""A run's folder on disk: the one place its file names are spelled (no torch, no SQL).

    <runs root>/<config hash>/
        config.json                        the resolved run configuration (written by training)
        checkpoints/iter-<N>.pt, last.pt   training checkpoints (`last.pt`: the newest)
        probs/<split>/<image>.npy          fp16 softmax probabilities, `index.json` written last
        probs/<split>/crf-cache/<key>/     the dense CRF's per-image results

The runs root is `--runs-dir`, else `$RMI_RUNS_DIR`, else `runs/` beside an SQLite database,
else `./runs` (`runs_root`). The engine, the CRF and the runner all build their paths here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

RUNS_DIR_ENV = "RMI_RUNS_DIR"
CONFIG_FILE = "config.json"
CHECKPOINTS_DIR = "checkpoints"
LAST_CHECKPOINT = "last.pt"
PROBS_DIR = "probs"
PROBS_INDEX = "index.json"
CRF_CACHE_DIR = "crf-cache"


def runs_root(explicit: Path | None = None, database_file: Path | None = None) -> Path:
    """The folder that holds run folders: `explicit`, `$RMI_RUNS_DIR`, `runs/` beside the
    SQLite file `database_file`, or `./runs` (a server database has no file)."""
    if explicit is not None:
        return Path(explicit).expanduser().resolve()
    if os.environ.get(RUNS_DIR_ENV):
        return Path(os.environ[RUNS_DIR_ENV]).expanduser().resolve()
    if database_file is not None:
        return database_file.resolve().parent / "runs"
    return Path("runs").resolve()


@dataclass(frozen=True)
class RunFolder:
    """The files of one run, under `path` (`<runs root>/<config hash>`)."""

    path: Path

    @classmethod
    def of(cls, root: Path, config_hash: str) -> RunFolder:
        return cls(Path(root) / config_hash)

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / LAST_CHECKPOINT

    def probs(self, split: str) -> Path:
        """The folder of a split's saved probabilities."""
        return self.path / PROBS_DIR / split

    @classmethod
    def of_checkpoint(cls, checkpoint: Path) -> RunFolder:
        """The run folder a checkpoint file (`<run>/checkpoints/<file>.pt`) lives in."""
        return cls(Path(checkpoint).resolve().parent.parent)


def probs_index(probs_dir: Path) -> Path:
    """The index of a probabilities folder (image names in order, class names, dataset)."""
    return Path(probs_dir) / PROBS_INDEX


def crf_cache(probs_dir: Path, key: str) -> Path:
    """Where the dense CRF caches its per-image results for one setting (`key`)."""
    return Path(probs_dir) / CRF_CACHE_DIR / key
