"""The environment fingerprint stored beside every number: machine, software, code version."""

from __future__ import annotations

import platform
import shutil
import socket
import subprocess
from pathlib import Path

import torch
import torchvision

import rmi_cli
from rmi_cli.records import Fingerprint

_TIMEOUT_S = 5.0


def environment_fingerprint(device: torch.device | str) -> Fingerprint:
    """Describe where a measurement ran; never fails for a missing tool (nvidia-smi, git)."""
    device = torch.device(device)
    on_cuda = device.type == "cuda"
    return Fingerprint(
        hostname=socket.gethostname(),
        platform=platform.platform(),
        python=platform.python_version(),
        torch=torch.__version__,
        torchvision=torchvision.__version__,
        device=torch.cuda.get_device_name(device) if on_cuda else "cpu",
        cuda=torch.version.cuda,
        driver=_nvidia_driver() if on_cuda else None,
        cudnn=_cudnn_version() if on_cuda else None,
        cpu=_cpu_model(),
        num_threads=torch.get_num_threads(),
        git_commit=git_commit(repo_root()),
        rmi_version=rmi_cli.__version__,
    )


def repo_root() -> Path:
    """The checkout this package was imported from (when it runs from one)."""
    return Path(rmi_cli.__file__).resolve().parents[1]


def _run(command: list[str], cwd: Path | None = None) -> str | None:
    """stdout of a short command, or None when it is missing, fails or hangs."""
    if shutil.which(command[0]) is None:
        return None
    try:
        completed = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None


def _nvidia_driver() -> str | None:
    output = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    return output.splitlines()[0].strip() if output else None


def _cudnn_version() -> str | None:
    version = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return str(version) if version is not None else None


def _cpu_model() -> str | None:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def git_commit(repo: Path) -> str | None:
    """HEAD of `repo` with "+dirty" when the work tree has changes; None outside a checkout."""
    if not (repo / ".git").exists():
        return None
    # A checkout owned by another user trips git's safe.directory check; reading HEAD is safe.
    env_args = ["-c", f"safe.directory={repo}"]
    commit = _run(["git", *env_args, "-C", str(repo), "rev-parse", "HEAD"])
    if commit is None:
        return None
    status = _run(["git", *env_args, "-C", str(repo), "status", "--porcelain"])
    return f"{commit}+dirty" if status else commit
