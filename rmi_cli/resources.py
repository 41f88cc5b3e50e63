"""Files rmi ships beside its code: the Alembic migrations and the experiments manifest.

In the repository they live at the top level (`migrations/`, `experiments.yaml`); a wheel
carries copies in `rmi_cli/_resources/` (setup.py's build step), found here with
`importlib.resources` as MLflow finds its migrations. Nothing is read at import time.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from rmi_cli.errors import DependencyMissing

PACKAGED = "_resources"  # the folder of rmi_cli that a wheel carries them in


def migrations_dir() -> Path:
    """The Alembic scripts folder (env.py, versions/)."""
    return _find("migrations", "env.py")


def experiments_manifest() -> Path:
    """The manifest of the paper's experiments and the quickstart."""
    return _find("experiments.yaml")


def _find(name: str, inside: str | None = None) -> Path:
    packaged = Path(str(resources.files("rmi_cli") / PACKAGED / name))
    source_tree = Path(__file__).resolve().parents[1] / name
    for candidate in (packaged, source_tree):
        if (candidate / inside).is_file() if inside else candidate.is_file():
            return candidate
    raise DependencyMissing(
        f"rmi's {name} is missing: neither {packaged} (an installed wheel) nor {source_tree} "
        f"(the source tree) has it; reinstall rmi-cli (pip install --force-reinstall rmi-cli, "
        f"or pip install -e . in the repository)"
    )
