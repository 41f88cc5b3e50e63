"""Connecting to a database server (PostgreSQL): time limits by default, one-line errors.

Without limits, a server that accepts the connection and never answers (a hung server, a
firewall that swallows packets, the wrong port of another service) keeps `rmi status` waiting
forever. Every connection therefore gives up after `CONNECT_TIMEOUT_S`, and the commands that
only read (status, table, db current, a dry run) cancel a statement after
`READER_STATEMENT_TIMEOUT_S`. Both are libpq settings the URL can override:

    postgresql://host/rmi?connect_timeout=30
    postgresql://host/rmi?options=-c%20statement_timeout%3D300s   (0 turns it off)

Writers (workers, queueing) get no statement timeout: a migration or a claim that waits for a
lock held by another worker must wait, not fail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import URL, ExceptionContext

from rmi_cli.errors import DatabaseError

CONNECT_TIMEOUT_S = 10
READER_STATEMENT_TIMEOUT_S = 60


def server_connect_args(url: URL, *, reader: bool) -> dict[str, Any]:
    """Connection arguments that add the default limits to what `url` does not set itself.

    SQLAlchemy passes the URL's query to the driver and then `connect_args` over it, so a
    setting given here would replace the URL's own: only what the URL lacks is set.
    """
    if url.get_backend_name() != "postgresql":
        return {}
    args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        args["connect_timeout"] = CONNECT_TIMEOUT_S
    options = url.query.get("options", "")
    options = " ".join(options) if isinstance(options, tuple) else str(options)
    if reader and "statement_timeout" not in options:
        limit = f"-c statement_timeout={READER_STATEMENT_TIMEOUT_S}s"
        args["options"] = f"{options} {limit}".strip()
    return args


def server_error_check(where: str, url: URL) -> Callable[[ExceptionContext], None]:
    """An engine "handle_error" listener: the limits above, when hit, become one line naming
    the limit and how to raise it, instead of the driver's traceback."""
    connect = url.query.get("connect_timeout", CONNECT_TIMEOUT_S)

    def check(context: ExceptionContext) -> None:
        if context.is_pre_ping:
            return  # the pool reconnects a dropped connection itself
        text = str(context.original_exception)
        if "statement timeout" in text:
            raise DatabaseError(
                f"{where}: a query took longer than the readers' statement timeout "
                f"({READER_STATEMENT_TIMEOUT_S} s by default); the server may be overloaded or "
                f"a table locked by a migration; try again, or raise the limit in the URL "
                f"(?options=-c%20statement_timeout%3D300s)"
            )
        if "timeout expired" in text:
            raise DatabaseError(
                f"{where}: the server did not answer within the connect timeout ({connect} s); "
                f"check the host and port (is PostgreSQL listening there?) and the network, or "
                f"raise the limit in the URL (?connect_timeout=30)"
            )

    return check
