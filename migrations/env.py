"""Alembic environment for rmi's result database.

Run from code (`rmi_cli.db.migrate`), which passes an open connection, already inside a
transaction, in `config.attributes["connection"]` (MLflow's pattern): no alembic.ini, no
dependence on the current folder. Without a connection (a maintainer running `alembic` by hand
with `-x url=...` or `sqlalchemy.url`) it opens its own engine.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import NullPool

from rmi_cli.db.migrate import VERSION_TABLE
from rmi_cli.db.schema import Base

config = context.config
target_metadata = Base.metadata


def _configure(dialect: str, **options) -> None:
    context.configure(
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        # SQLite cannot ALTER most things: batch mode recreates the table instead.
        render_as_batch=dialect == "sqlite",
        compare_type=True,
        **options,
    )


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database: run migrations with `rmi db upgrade` or pass -x url=...")
    return url


def run_migrations_offline() -> None:
    url = _url()
    _configure(url.split(":", 1)[0].split("+", 1)[0], url=url, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    _configure(connection.dialect.name, connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=NullPool)
    with engine.begin() as own_connection:
        _run(own_connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
