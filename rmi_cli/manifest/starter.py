"""`rmi init`: a commented starter manifest (the quickstart and a folder-dataset template)."""

from __future__ import annotations

import os
import tempfile
from importlib import resources
from pathlib import Path

from rmi_cli.errors import UserError

DEFAULT_NAME = "experiments.yaml"


def starter_text() -> str:
    """The starter manifest as shipped (`rmi_cli/manifest/starter.yaml`)."""
    return (resources.files("rmi_cli.manifest") / "starter.yaml").read_text(encoding="utf-8")


def write_starter(path: Path | None = None) -> Path:
    """Write the starter manifest to `path` (a folder: `experiments.yaml` in it; None: in the
    current folder) and return where. An existing file is never replaced (`UserError`), and a
    reader never sees half a file: it is written aside, then linked into place."""
    target = Path(path) if path is not None else Path(DEFAULT_NAME)
    if target.is_dir():
        target = target / DEFAULT_NAME
    if target.exists() or target.is_symlink():
        raise UserError(
            f"{target} already exists; rmi init does not overwrite it: remove it, or give "
            f"another path (rmi init PATH)"
        )
    if not target.parent.is_dir():
        raise UserError(f"{target.parent}: no such folder; create it first, or give another path")
    _link_new(target, starter_text())
    return target


def _link_new(target: Path, text: str) -> None:
    """Create `target` with `text` unless it exists: written aside, then hard-linked into place
    (a link fails instead of replacing); where links are not supported, created exclusively."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        try:
            os.link(temporary, target)
        except FileExistsError:
            raise
        except OSError:
            with target.open("x", encoding="utf-8") as file:
                file.write(text)
    except FileExistsError:
        raise UserError(f"{target} already exists; rmi init does not overwrite it") from None
    except OSError as exc:
        raise UserError(f"{target}: cannot write ({exc.strerror}); give another path") from None
    finally:
        Path(temporary).unlink(missing_ok=True)
