"""`python -m bench [--quick] [flags]`: start, measure, report, tear down.

Exit status 0 when every correctness count is 0, 1 when one is not, 2 when the
run itself failed, 130 when interrupted. Everything it started is stopped and the
temporary directory removed, whatever happens (the logs are copied to
bench/results/logs/ first).
"""

import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

from bench import analysis, baselines, report, scenario
from bench.config import Config, parse
from bench.profile import Profiler
from bench.stack import ROOT, Stack
from bench.twilio import Signer


def say(text: str) -> None:
    print(text, flush=True)


def phase(name: str, started: float) -> None:
    say(f"[{time.monotonic() - started:6.1f} s] {name}")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


async def measure(config: Config, stack: Stack, started: float) -> dict:
    password = secrets.token_urlsafe(12)
    usernames = await asyncio.to_thread(
        stack.seed_agents, config.agents, config.capacity, password
    )
    phase(f"seeded {len(usernames)} agents", started)
    saturation = {"connections": config.connections, "seconds": config.baseline_seconds}
    measured = {
        "bare_same_server": await baselines.bare_view(stack.web.http, **saturation),
        "bare_gunicorn": await baselines.bare_view_on_gunicorn(stack, **saturation),
    }
    measured["bare_same_server"]["server"] = config.as_json()["server_shape"]
    # The baseline is the fastest server measured, not the one in use.
    measured["bare_fastest"] = max(
        measured["bare_same_server"], measured["bare_gunicorn"], key=lambda b: b["rps"]
    )
    phase("bare view baselines", started)
    measured["channel_layer_round_trip"] = await baselines.channel_round_trip(
        stack.redis_url, rounds=200 if config.quick else 1000
    )
    measured["skip_locked_dequeue"] = await baselines.skip_locked_dequeue(
        stack.cluster.url("bench_raw"), seconds=config.baseline_seconds
    )
    phase("channel-layer and SKIP LOCKED baselines", started)
    profiler = (
        Profiler(config.out / "profiles", stack.pids()) if config.profile else None
    )
    if profiler:
        profiler.start()
    load_average = os.getloadavg()
    try:
        outcome = await scenario.run(config, stack, usernames, password)
    finally:
        if profiler:
            profiler.stop()
    phase(
        f"load done ({outcome.load_seconds:.1f} s), drained: {outcome.drained}", started
    )
    found = await analysis.analyse(
        stack.cluster.url(), outcome.record, outcome.customers, config.capacity
    )
    phase("analysed", started)
    measured["webhook_saturation"] = await baselines.webhook_saturation(
        stack.web.webhooks,
        Signer(stack.auth_token, stack.web.public),
        **saturation,
    )
    phase("webhook saturation", started)
    costs = await per_step_costs(stack)
    phase("per-step costs", started)
    record = outcome.record
    summary = {
        "load_seconds": round(outcome.load_seconds, 1),
        "cores_used_during_load": outcome.cores,
        "postgres_during_load": outcome.postgres,
        "load_average_before_and_after": [load_average, os.getloadavg()],
        "drained": outcome.drained,
        "webhooks": len(record.webhook_times),
        "webhooks_peak_1s": report.peak_rate(record.webhook_times),
        "customers": dict(found["customers"]),
        "live_conversations_peak": found["live_conversations_peak"],
        "messages": found["messages"],
        "never_shown": found["never_shown"],
        "assignments": found["assignments"],
        "counts": dict(sorted(Counter(record.counts).items())),
        "log_errors": stack.errors(),
    }
    summary["costs_per_step"] = costs
    done = found["customers"].get("done", 0)
    if done:
        # CPU is the robust number on a shared machine: latency waits for CPU.
        summary["cpu_ms_per_finished_conversation"] = {
            part: round(used * outcome.load_seconds * 1000 / done)
            for part, used in outcome.cores.items()
        }
    if profiler:
        summary["profile"] = profiler.summary()
    return report.build(
        config.as_json(),
        measured,
        found,
        summary,
        {
            "command": " ".join(["python -m bench", *sys.argv[1:]]),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "code": code_version(),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
        },
    )


async def per_step_costs(stack: Stack) -> dict:
    """bench.costs in the stack's environment; its error, should it fail."""
    try:
        output = await asyncio.to_thread(stack.python, "-m", "bench.costs")
    except RuntimeError as exc:
        return {"error": str(exc)[-2000:]}
    return json.loads(output.strip().splitlines()[-1])


def code_version() -> dict[str, object]:
    """The commit measured, and the files changed on top of it."""

    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        )
        return result.stdout

    # Each line is two status letters, a space, the path (the letters may be spaces).
    changed = [line[3:] for line in git("status", "--porcelain").splitlines()]
    return {"commit": git("rev-parse", "HEAD").strip(), "uncommitted": changed}


def main(argv: list[str] | None = None) -> int:
    config = parse(argv)
    # Ctrl-C and SIGTERM stop the run where it is, at once. (asyncio's own Ctrl-C
    # handling only cancels the main task, which a run in full flight can outlive.)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    tmp = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
    tmp.chmod(0o711)  # the postgres user must reach its cluster below
    stack = Stack(config, tmp)
    started = time.monotonic()
    status = 2
    try:
        say(f"bench: server {config.server}, temporary directory {tmp}")
        stack.start()
        phase(f"stack up: web {stack.web.http} ws {stack.web.ws}", started)
        results = asyncio.run(measure(config, stack, started))
        dated = report.write(results, config.out)
        report.table(results, say)
        say(f"\nwrote {config.out / 'latest.json'} and {dated}")
        status = 1 if any(results["correctness"].values()) else 0
    except KeyboardInterrupt:
        say("interrupted: tearing down")
        status = 130
    except Exception:
        say("bench failed:")
        traceback.print_exc()
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # cut the teardown short
        stack.stop()
        logs = config.out / "logs"
        shutil.rmtree(logs, ignore_errors=True)
        shutil.copytree(stack.logs, logs, dirs_exist_ok=True)
        if (tmp / "pg" / "server.log").exists():
            shutil.copy(tmp / "pg" / "server.log", logs / "postgres.log")
        if config.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        phase(f"torn down (logs in {logs})", started)
    return status


if __name__ == "__main__":
    sys.exit(main())
