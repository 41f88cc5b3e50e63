"""Every command module, imported so that each registers itself on the app."""

from rmi_cli.cli import cmd_demo, cmd_queue, cmd_report, cmd_results, cmd_run

__all__ = ["cmd_demo", "cmd_queue", "cmd_report", "cmd_results", "cmd_run"]
