"""The `rmi` command: a Typer app whose commands are thin shells over the runner.

Exit codes: 0 success, 1 a run failed, 2 bad usage or input (one line, no traceback),
130 interrupted. Only `RmiError`s and usage errors become one line; anything else is a bug and
keeps its traceback. The app is built here from the command modules (they import nothing from
this module), so `app` always holds every command, whoever imports it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer
from typer.main import get_command

from rmi_cli import __version__
from rmi_cli.cli import cmd_demo, cmd_queue, cmd_report, cmd_results, cmd_run, cmd_submit
from rmi_cli.cli.console import error_line, info, show_runner_messages
from rmi_cli.cli.options import close_databases
from rmi_cli.errors import RmiError

# the order --help lists
COMMAND_MODULES = (cmd_demo, cmd_queue, cmd_results, cmd_report, cmd_run, cmd_submit)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rmi {__version__}")
        raise typer.Exit()


def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Region Mutual Information loss experiments: train, evaluate, post-process, tabulate.

    Start with `rmi demo`, then `rmi ablate experiments.yaml --experiment NAME --dry-run`.
    """


def build_app() -> typer.Typer:
    """The Typer app with every command registered."""
    # No help= here: it would replace the callback's docstring, which holds the example.
    built = typer.Typer(
        name="rmi",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
    built.callback()(root)
    for module in COMMAND_MODULES:
        module.register(built)
    return built


app = build_app()


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on `argv` and return the exit code (errors become one line on stderr)."""
    command = get_command(app)
    try:
        with show_runner_messages():
            result = command.main(
                args=list(sys.argv[1:] if argv is None else argv),
                prog_name="rmi",
                standalone_mode=False,
            )
    except RmiError as exc:
        error_line(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        error_line("interrupted")
        return 130
    except SystemExit as exc:  # typer's completion options exit by themselves
        return exc.code if isinstance(exc.code, int) else 0
    except Exception as exc:
        return _usage_error(exc)
    finally:
        close_databases()
    return result if isinstance(result, int) else 0


def _usage_error(exc: Exception) -> int:
    """click/typer usage errors as one line (their classes moved between typer versions)."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        info(exc.format_message())  # type: ignore[attr-defined]
        return 2
    if hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int):
        error_line(f"{exc.format_message()} (see `rmi --help`)")
        return int(exc.exit_code)  # type: ignore[attr-defined]
    if type(exc).__name__ == "Abort":
        error_line("interrupted")
        return 130
    raise exc


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
