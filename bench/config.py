"""The run's configuration: command-line flags, with a quick and a full default."""

import argparse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SERVERS = {
    "daphne": "daphne ×{n} on {n} ports: HTTP and WebSockets",
    "split": "gunicorn ({n} workers × {t} threads) for HTTP, one daphne for "
    "WebSockets: two ports",
    "uvicorn": "uvicorn with {n} workers on one port: HTTP and WebSockets",
}
RESULTS = Path(__file__).parent / "results"


@dataclass
class Config:
    quick: bool = False
    customers: int = 200
    agents: int = 20
    messages: int = 3
    capacity: int = 3
    duration: float = 240.0
    ramp: float = 30.0
    think: float = 0.5
    server: str = "split"
    web_procs: int = 2
    web_threads: int = 4
    webhook_procs: int = 1
    worker_concurrency: int = 2
    baseline_seconds: float = 5.0
    connections: int = 32
    webhook_retry_rate: float = 0.05
    status_duplicate_rate: float = 0.15
    status_reorder_rate: float = 0.2
    profile: bool = False
    keep: bool = False
    seed: int = 6
    out: Path = field(default=RESULTS)
    env: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        # Relative to the checkout when inside it: results say nothing of the machine.
        try:
            data["out"] = str(self.out.resolve().relative_to(Path.cwd()))
        except ValueError:
            data["out"] = self.out.name
        data["server_shape"] = SERVERS[self.server].format(
            n=self.web_procs, t=self.web_threads
        )
        if self.server == "split" and self.webhook_procs:
            data["server_shape"] += (
                f", and gunicorn ({self.webhook_procs} workers) for the webhooks"
            )
        return data


QUICK = {
    "customers": 20,
    "agents": 5,
    "messages": 2,
    "duration": 25.0,
    "ramp": 4.0,
    "think": 0.2,
    "baseline_seconds": 2.0,
}


def parse(argv: list[str] | None = None) -> Config:
    defaults = Config()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Start Switchboard's production shape under a temporary "
        "directory, drive it with customers and agents, report and tear down.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a small load, under a minute"
    )
    number = {"type": int, "default": None}
    seconds = {"type": float, "default": None}
    parser.add_argument("--customers", **number, help=f"({defaults.customers})")
    parser.add_argument("--agents", **number, help=f"({defaults.agents})")
    parser.add_argument(
        "--messages",
        **number,
        help=f"messages per customer once with an agent ({defaults.messages})",
    )
    parser.add_argument(
        "--duration",
        **seconds,
        help=f"most seconds of load before it stops ({defaults.duration:g})",
    )
    parser.add_argument(
        "--ramp",
        **seconds,
        help=f"seconds over which customers arrive ({defaults.ramp:g})",
    )
    parser.add_argument(
        "--think", **seconds, help=f"customers' and agents' pause ({defaults.think:g})"
    )
    parser.add_argument(
        "--server", choices=sorted(SERVERS), default=defaults.server,
        help="; ".join(
            f"{name}: {text.format(n='N', t='T')}" for name, text in SERVERS.items()
        ),
    )  # fmt: skip
    parser.add_argument("--web-procs", type=int, default=defaults.web_procs)
    parser.add_argument(
        "--webhook-procs", type=int, default=defaults.webhook_procs,
        help="--server split: a gunicorn of its own with this many workers for "
        "Twilio's webhooks (0: they share the HTTP one)",
    )  # fmt: skip
    parser.add_argument(
        "--web-threads", type=int, default=defaults.web_threads,
        help="threads of each gunicorn worker (--server split)",
    )  # fmt: skip
    parser.add_argument(
        "--worker-concurrency", type=int, default=defaults.worker_concurrency,
        help="Celery processes in each of the two workers",
    )  # fmt: skip
    parser.add_argument(
        "--baseline-seconds", **seconds,
        help=f"length of each saturation measurement ({defaults.baseline_seconds:g})",
    )  # fmt: skip
    parser.add_argument(
        "--connections", type=int, default=defaults.connections,
        help="concurrent connections of the saturation measurements",
    )  # fmt: skip
    parser.add_argument(
        "--profile", action="store_true",
        help="sample the web and worker processes with py-spy during the load",
    )  # fmt: skip
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory"
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE",
        help="an environment variable for the stack (repeatable), e.g. "
        "DB_CONN_MAX_AGE=0",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", type=Path, default=defaults.out)
    args = parser.parse_args(argv)
    for item in args.env:
        if "=" not in item:
            parser.error(f"--env takes NAME=VALUE, not {item!r}")
    values = {**(QUICK if args.quick else {})}
    for name, value in vars(args).items():
        if value is not None:
            values[name] = value
    return Config(**values)
