"""The `rmi` command: a Typer app whose commands are thin shells over library functions."""

from __future__ import annotations

import typer

from rmi_cli import __version__

app = typer.Typer(
    name="rmi",
    help="Region Mutual Information loss experiments: train, evaluate, post-process, tabulate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rmi {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Region Mutual Information loss experiments: train, evaluate, post-process, tabulate."""


def main() -> None:
    """Console-script entry point."""
    app()
