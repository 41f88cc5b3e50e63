"""How `rmi table` and `rmi demo` print tables: on stdout, or into one file written atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rmi_cli.atomic import atomic_write_text
from rmi_cli.cli.console import info, out_console
from rmi_cli.errors import UserError

if TYPE_CHECKING:  # pandas: only where a table is drawn
    from rmi_cli.report import ReportTable


def print_tables(tables: Sequence[ReportTable], fmt: str, output: Path | None = None) -> None:
    """Render each table as `fmt` onto stdout, or into the file `output`."""
    from rmi_cli.report import render

    texts = []
    for index, table in enumerate(tables):
        rendered = render(table, fmt)
        if output is not None:
            texts.append(rendered if isinstance(rendered, str) else _plain(rendered))
        elif isinstance(rendered, str):
            # The text ends with its own newline (a CSV file must not end with an empty row);
            # one blank line separates tables.
            out_console().print(("\n" if index else "") + rendered, markup=False, end="")
        else:
            out_console().print(rendered)
    if output is not None:
        write_atomically(output, "\n".join(texts))
        info(f"wrote {output}")


def write_atomically(path: Path, text: str) -> None:
    """Write an export so that a reader never sees half of it."""
    if path.is_dir():
        raise UserError(f"--output {path}: is a folder; give a file name such as table.md")
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise UserError(
            f"--output {path}: cannot write ({exc.strerror}); pick another path"
        ) from None


def _plain(renderable: object) -> str:
    console = out_console().__class__(record=True, width=200, no_color=True)
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()
