"""Shared fixtures: paths to the real CamVid copy, a throwaway PostgreSQL server (initdb + pg_ctl
in a temporary folder, as `nobody` when we are root).

The project's shared folder (the real CamVid copy, the paper's text) is `../shared` beside the
checkout, or $RMI_SHARED; $RMI_TEST_CAMVID points at a CamVid copy elsewhere."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RMI_SHARED", REPO.parent / "shared"))
CAMVID = Path(os.environ.get("RMI_TEST_CAMVID", SHARED / "data" / "camvid"))


@pytest.fixture(scope="session")
def camvid_root() -> Path:
    """The real CamVid copy beside the checkout; tests that need it skip without it."""
    if not (CAMVID / "train.txt").is_file():
        pytest.skip(f"real CamVid not found at {CAMVID} (set RMI_TEST_CAMVID to its folder)")
    return CAMVID


def _pg_bin() -> Path:
    """RMI_TEST_PG_BIN, else the folder of the `pg_ctl` on PATH (Debian links it from
    /usr/lib/postgresql/<version>/bin, where initdb and postgres live too)."""
    if "RMI_TEST_PG_BIN" in os.environ:
        return Path(os.environ["RMI_TEST_PG_BIN"])
    found = shutil.which("pg_ctl")
    return Path(found).resolve().parent if found else Path("/usr/lib/postgresql/bin")


PG_BIN = _pg_bin()


# --- PostgreSQL -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://rmi@{self.host}:{self.port}/{database}"


def _pg_missing() -> str | None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).is_file():
            return f"no PostgreSQL server binaries in {PG_BIN} (set RMI_TEST_PG_BIN)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_server_user(args: list[str]) -> None:
    # initdb and postgres refuse to run as root; `nobody` can, in a folder it owns.
    user = "nobody" if os.geteuid() == 0 else None
    subprocess.run(args, check=True, capture_output=True, user=user, timeout=60)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    missing = _pg_missing()
    if missing:
        # .ci/run installs a server and sets RMI_REQUIRE_POSTGRES: there, a skip would hide it.
        if os.environ.get("RMI_REQUIRE_POSTGRES"):
            pytest.fail(f"RMI_REQUIRE_POSTGRES is set but {missing}")
        pytest.skip(f"PostgreSQL tests skipped: {missing}")
    base = Path(tempfile.mkdtemp(prefix="rmi-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "nobody")
    data, port = base / "data", _free_port()
    try:
        init = ["-D", str(data), "-U", "rmi", "--auth=trust", "-E", "UTF8", "--no-sync"]
        _as_server_user([str(PG_BIN / "initdb"), *init])
        options = f"-k {base} -h 127.0.0.1 -p {port} -F -c max_connections=60"
        start = ["-D", str(data), "-o", options, "-w", "-l", str(base / "log"), "start"]
        _as_server_user([str(PG_BIN / "pg_ctl"), *start])
    except (subprocess.SubprocessError, OSError) as exc:
        shutil.rmtree(base, ignore_errors=True)
        if os.environ.get("RMI_REQUIRE_POSTGRES"):
            pytest.fail(f"RMI_REQUIRE_POSTGRES is set but the server did not start ({exc})")
        pytest.skip(f"PostgreSQL tests skipped: could not start a server ({exc})")
    try:
        yield PgServer("127.0.0.1", port)
    finally:
        _as_server_user([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_database(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    import psycopg
    from psycopg import sql

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = f"host={pg_server.host} port={pg_server.port} user=rmi dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield pg_server.url(name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
