"""A throwaway PostgreSQL cluster for the whole session, and Django pointed at it.

The concurrency guarantees (unique constraints under a race, row locks, the partial
unique index on open conversations) only mean something on a real server, so these
tests never fall back to SQLite: no PostgreSQL binaries is an error, not a skip.
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
DATABASE = "switchboard"
TEST_DATABASE = "test_switchboard"
SUPERUSER = "postgres"


@dataclass(frozen=True)
class Cluster:
    bin_dir: Path
    data_dir: Path
    host: str
    port: int


def pytest_collection_modifyitems(config, items):
    """Mark everything here `postgres`; refuse to share a session with other tests.

    The database settings are session-wide: tests from elsewhere in the same run
    would either move onto this cluster or, worse, keep these on SQLite.
    """
    ours = [item for item in items if HERE in Path(item.path).parents]
    others = [item for item in items if HERE not in Path(item.path).parents]
    if ours and others:
        raise pytest.UsageError(
            "tests/pg runs on its own PostgreSQL cluster and needs a pytest session "
            "of its own: run `make test-pg` (pytest tests/pg), and the rest with "
            "--ignore=tests/pg"
        )
    for item in ours:
        item.add_marker(pytest.mark.postgres)


def find_pg_bin() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin with initdb and pg_ctl."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(
            int(part) for part in path.parent.name.split(".") if part.isdigit()
        )

    found = [
        Path(path)
        for path in glob.glob(PG_BIN_GLOB)
        if (Path(path) / "initdb").is_file() and (Path(path) / "pg_ctl").is_file()
    ]
    if not found:
        raise RuntimeError(
            f"no PostgreSQL server binaries under {PG_BIN_GLOB} (initdb, pg_ctl): "
            "install the postgresql package to run tests/pg"
        )
    return max(found, key=version)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def as_postgres(*command: str | os.PathLike) -> list[str]:
    """`command` run as the postgres OS user: initdb refuses to run as root."""
    args = [str(part) for part in command]
    if os.geteuid() == 0:
        return ["runuser", "-u", SUPERUSER, "--", *args]
    return args


def run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """A cluster in a temporary directory; stopped and deleted at session end."""
    bin_dir = find_pg_bin()
    root = Path(tempfile.mkdtemp(prefix="switchboard-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, user=SUPERUSER)
    data_dir = root / "data"
    cluster = Cluster(bin_dir, data_dir, "127.0.0.1", free_port())
    try:
        start_cluster(cluster, root)
        yield cluster
    finally:
        subprocess.run(
            as_postgres(
                bin_dir / "pg_ctl", "--pgdata", data_dir, "stop", "-m", "immediate"
            ),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


def start_cluster(cluster: Cluster, root: Path) -> None:
    """initdb, trusting local connections; then start it on `cluster.port`."""
    run(
        as_postgres(
            cluster.bin_dir / "initdb",
            "--pgdata",
            cluster.data_dir,
            "--username",
            SUPERUSER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        )
    )
    server_options = (
        f"-c listen_addresses={cluster.host} -p {cluster.port} -k {root} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    log = root / "server.log"
    try:
        run(
            as_postgres(
                cluster.bin_dir / "pg_ctl",
                "--pgdata",
                cluster.data_dir,
                "--log",
                log,
                "--wait",
                "--timeout",
                "30",
                "--options",
                server_options,
                "start",
            )
        )
    except RuntimeError as exc:
        detail = log.read_text() if log.exists() else "(no server log)"
        raise RuntimeError(f"{exc}\nserver log:\n{detail}") from None


def forget_connections() -> None:
    """Drop any connection Django made (or cached) before the settings changed."""
    from django.db import connections

    for alias in list(connections.settings):
        if hasattr(connections._connections, alias):
            connections[alias].close()
            del connections[alias]
    # Recomputed from settings.DATABASES on next use.
    connections.__dict__.pop("settings", None)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(postgres_cluster: Cluster) -> None:
    """Point the default database at the session's cluster, in place."""
    from django.conf import settings
    from django.db import connections

    forget_connections()
    database = settings.DATABASES["default"]
    database.update(
        ENGINE="django.db.backends.postgresql",
        NAME=DATABASE,
        USER=SUPERUSER,
        PASSWORD="",
        HOST=postgres_cluster.host,
        PORT=str(postgres_cluster.port),
        OPTIONS={},  # the SQLite pragmas and transaction mode mean nothing here
        CONN_MAX_AGE=0,
        CONN_HEALTH_CHECKS=False,
        TEST={"NAME": TEST_DATABASE},
    )
    connection = connections["default"]
    if connection.vendor != "postgresql":
        raise RuntimeError(
            f"Django still uses {connection.vendor} after pointing it at PostgreSQL"
        )
