"""The project's exception types.

Library code raises these with a message that names the file, field or run, what was expected,
what was found, and what to do. Only the CLI turns them into one red line and an exit code:
`UserError` (bad usage or input) exits 2, `RunFailed` exits 1. Anything else is a bug and keeps
its traceback.
"""


class RmiError(Exception):
    """Base class of every error the tool reports to the user as one line."""

    exit_code = 2


class UserError(RmiError):
    """Bad usage or input: a manifest, a flag, a file, a database the user pointed us at."""


class ConfigError(UserError):
    """A manifest or run configuration that does not validate."""


class DataError(UserError):
    """A dataset that cannot be read as configured (missing root, bad label, unreadable image)."""


class CheckpointError(UserError):
    """A checkpoint that is missing, unreadable, or belongs to another model."""


class LossOptionError(UserError, ValueError):
    """Loss options the user chose that the loss cannot work with (a radius out of range, a
    crop too small for the pooled region); also a ValueError for library users. Tensors that do
    not fit the loss are a bug, `rmi_cli.losses.LossInputError`, not this."""


class DatabaseError(UserError):
    """A database that cannot be opened, is read-only, or has the wrong schema."""


class SchemaOutOfDate(DatabaseError):
    """The database schema is older than this version of the tool (`rmi db upgrade` fixes it)."""


class JobHeld(UserError):
    """Another worker holds the job a foreground command was asked to run (the message says who,
    since when, and when its lease ends; the command's --wait waits for it)."""


class DependencyMissing(UserError):
    """An optional dependency (e.g. pydensecrf) is not installed."""


class RunFailed(RmiError):
    """A run or job failed while executing; its error is stored with it."""

    exit_code = 1


class Interrupted(RmiError):
    """The user or the system asked us to stop (SIGINT/SIGTERM); state was saved first."""

    exit_code = 130
