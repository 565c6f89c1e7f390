"""A throwaway PostgreSQL cluster under the run's temporary directory.

As tests/pg does it: `initdb` as the postgres OS user (it refuses root), then
`pg_ctl start` on a free port. Unlike the test cluster this one keeps PostgreSQL's
durable defaults (fsync, synchronous_commit): the benchmark is of production.
"""

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.ports import free_port

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SUPERUSER = "postgres"
DATABASE = "switchboard"


def find_pg_bin() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin with initdb and pg_ctl."""
    found = [
        Path(path)
        for path in glob.glob(PG_BIN_GLOB)
        if (Path(path) / "initdb").is_file() and (Path(path) / "pg_ctl").is_file()
    ]
    if not found:
        raise RuntimeError(
            f"no PostgreSQL server binaries under {PG_BIN_GLOB}: "
            "apt-get install postgresql"
        )
    return max(found, key=lambda path: int(path.parent.name.split(".")[0]))


def as_postgres(*command: object) -> list[str]:
    args = [str(part) for part in command]
    if os.geteuid() == 0:
        return ["runuser", "-u", SUPERUSER, "--", *args]
    return args


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )


@dataclass
class Cluster:
    root: Path
    settings: str = ""  # more `-c name=value` server options
    port: int = 0
    bin_dir: Path | None = None
    started: bool = False

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = DATABASE) -> str:
        return f"postgres://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self.bin_dir = find_pg_bin()
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, user=SUPERUSER)
        self.port = free_port()
        _run(
            as_postgres(
                self.bin_dir / "initdb", "--pgdata", self.data_dir,
                "--username", SUPERUSER, "--auth", "trust",
                "--encoding", "UTF8", "--locale", "C", "--no-sync",
            )
        )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            "-c max_connections=200 -c shared_buffers=256MB "
            # Per-statement counts, for the report's slowest queries.
            "-c shared_preload_libraries=pg_stat_statements "
            # Commit times, so that the analysis orders what committed when.
            "-c track_commit_timestamp=on "
            f"{self.settings}"
        )
        log = self.root / "server.log"
        try:
            _run(
                as_postgres(
                    self.bin_dir / "pg_ctl", "--pgdata", self.data_dir,
                    "--log", log, "--wait", "--timeout", "30",
                    "--options", options, "start",
                )
            )  # fmt: skip
        except RuntimeError as exc:
            detail = log.read_text() if log.exists() else "(no server log)"
            raise RuntimeError(f"{exc}\nserver log:\n{detail}") from None
        self.started = True
        for database in (DATABASE, "bench_raw"):
            _run(
                as_postgres(
                    self.bin_dir / "createdb", "-h", "127.0.0.1",
                    "-p", self.port, "-U", SUPERUSER, database,
                )
            )  # fmt: skip

    def stop(self) -> None:
        if not self.started or self.bin_dir is None:
            return
        for mode, timeout in (("fast", 20), ("immediate", 20)):
            try:
                result = subprocess.run(
                    as_postgres(
                        self.bin_dir / "pg_ctl", "--pgdata", self.data_dir,
                        "stop", "-m", mode,
                    ),
                    capture_output=True,
                    timeout=timeout,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                continue
            if result.returncode == 0:
                break
        self.started = False


@contextlib.contextmanager
def throwaway_cluster(settings: str = "") -> Iterator[Cluster]:
    """A started cluster under a temporary directory; stopped and deleted on exit."""
    tmp = Path(tempfile.mkdtemp(prefix="switchboard-bench-pg-"))
    tmp.chmod(0o711)  # the postgres user must reach its cluster below
    cluster = Cluster(tmp / "pg", settings=settings)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)
