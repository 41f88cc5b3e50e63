"""A database server that accepts the connection and never answers: every command gives up
within the connect timeout with one line (it waited forever), and the URL can change the limit.

No PostgreSQL server is needed, only its driver: a plain TCP socket plays the hung server.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_kit import rmi

from rmi_cli.db.server import CONNECT_TIMEOUT_S

# Starting a process, importing the CLI and SQLAlchemy: seconds on a loaded two-core machine.
START_UP_S = 30


@pytest.fixture
def silent_server() -> Iterator[int]:
    """The port of a TCP server that accepts every connection and never sends a byte."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        if os.environ.get("RMI_REQUIRE_POSTGRES"):
            pytest.fail("RMI_REQUIRE_POSTGRES is set but psycopg is not installed")
        pytest.skip("psycopg is not installed (pip install 'psycopg[binary]')")
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in [*held, server]:
            conn.close()


def timed_rmi(tmp_path: Path, *argv: str) -> tuple[float, list[str], int]:
    start = time.monotonic()
    result = rmi(*argv, cwd=tmp_path, timeout=CONNECT_TIMEOUT_S + START_UP_S + 60)
    assert "Traceback" not in result.err, result
    return time.monotonic() - start, result.err_lines, result.code


def test_status_gives_up_within_the_default_connect_timeout(
    silent_server: int, tmp_path: Path
) -> None:
    url = f"postgresql://rmi@127.0.0.1:{silent_server}/rmi"
    elapsed, lines, code = timed_rmi(tmp_path, "status", "--db", url)
    assert code == 2, lines
    (line,) = lines
    assert line == (
        f"error: postgresql+psycopg://rmi@127.0.0.1:{silent_server}/rmi: the server did not "
        f"answer within the connect timeout ({CONNECT_TIMEOUT_S} s); check the host and port (is "
        f"PostgreSQL listening there?) and the network, or raise the limit in the URL "
        f"(?connect_timeout=30)"
    )
    assert CONNECT_TIMEOUT_S <= elapsed < CONNECT_TIMEOUT_S + START_UP_S, elapsed


@pytest.mark.parametrize(
    "argv",
    [("status",), ("table", "-e", "x"), ("worker",), ("db", "upgrade")],
    ids=" ".join,
)
def test_the_url_sets_the_connect_timeout_of_every_command(
    silent_server: int, tmp_path: Path, argv: tuple[str, ...]
) -> None:
    url = f"postgresql://rmi@127.0.0.1:{silent_server}/rmi?connect_timeout=2"
    elapsed, lines, code = timed_rmi(tmp_path, *argv, "--db", url)
    assert code == 2, lines
    (line,) = lines
    assert "did not answer within the connect timeout (2 s)" in line, line
    assert elapsed < 2 + START_UP_S, elapsed
    assert list(tmp_path.iterdir()) == []  # nothing written beside
