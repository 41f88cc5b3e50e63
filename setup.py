"""Ships the Alembic migrations and the experiments manifest inside the wheel.

Both stay at the top of the repository (part of the design: maintainers edit them there); a
wheel build copies them into `rmi_cli/_resources/`, where `rmi_cli.resources` finds them with
`importlib.resources` once installed. An editable install reads them from the source tree.
Everything else is configured in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
RESOURCES = ("migrations", "experiments.yaml")  # copied into rmi_cli/_resources/


class BuildPyWithResources(build_py):
    """`build_py`, then the top-level resources into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the source tree itself
        target = Path(self.build_lib) / "rmi_cli" / "_resources"
        target.mkdir(parents=True, exist_ok=True)
        for name in RESOURCES:
            source, copy = HERE / name, target / name
            if source.is_dir():
                shutil.rmtree(copy, ignore_errors=True)
                ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
                shutil.copytree(source, copy, ignore=ignore)
            else:
                shutil.copy2(source, copy)


setup(cmdclass={"build_py": BuildPyWithResources})
