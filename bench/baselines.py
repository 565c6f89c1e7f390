"""Baselines measured in the same run, on the same machine, against the same servers:
the least each path could cost.

- a bare Django view (`/bench/bare`) on the stack's own HTTP server, and on the
  fastest server we can run (gunicorn, WSGI), for the webhook;
- a raw channel-layer round trip (channels_redis group_send → receive), for the
  socket paths;
- a raw PostgreSQL `SELECT ... FOR UPDATE SKIP LOCKED` dequeue, for assignment.
"""

import asyncio
import contextlib
import itertools
import time
import urllib.request

import psycopg

from bench import loadgen
from bench.ports import free_port
from bench.stack import Stack, gunicorn, signal_group
from bench.stats import summarize
from bench.twilio import MESSAGING_PATH, Signer, inbound_fields, new_sid

DEQUEUE_JOBS = 100_000
DEQUEUE_CONNECTIONS = 4
# Saturation webhooks go to a sender with no flow: what is measured is the web
# path (verify, store, enqueue), not the bot behind it.
FLOWLESS_SENDER = "whatsapp:+15550001111"


def _bare() -> tuple[str, str, bytes, dict[str, str]]:
    return "GET", "/bench/bare", b"", {}


async def bare_view(bases: list[str], *, connections: int, seconds: float) -> dict:
    outcome = await loadgen.saturate(
        bases, _bare, connections=connections, seconds=seconds
    )
    return outcome.as_json()


async def bare_view_on_gunicorn(
    stack: Stack, *, connections: int, seconds: float
) -> dict:
    """Start gunicorn (threaded workers, which keep connections alive: measured
    here twice as fast as its sync workers, which close each one), as many as the
    stack's web processes, beside the stack; saturate its bare view; stop it."""
    port = free_port()
    process = stack.spawn("baseline-gunicorn", *gunicorn(port, stack.config.web_procs))
    base = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(_wait_for, f"{base}/bench/bare")
        result = await bare_view([base], connections=connections, seconds=seconds)
    finally:
        signal_group(process, 15)
        with contextlib.suppress(Exception):
            process.wait(timeout=10)
        signal_group(process, 9)
        stack.processes.pop("baseline-gunicorn", None)
    result["server"] = f"gunicorn gthread ×{stack.config.web_procs}"
    return result


def _wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url, timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


async def channel_round_trip(redis_url: str, *, rounds: int) -> dict:
    """group_send to a group of one channel, then receive on that channel."""
    from channels_redis.core import RedisChannelLayer

    layer = RedisChannelLayer(hosts=[{"address": redis_url}], prefix="bench")
    channel = await layer.new_channel()
    await layer.group_add("bench.baseline", channel)
    samples = []
    try:
        for number in range(rounds):
            started = time.monotonic()
            await layer.group_send(
                "bench.baseline", {"type": "bench.ping", "n": number}
            )
            await layer.receive(channel)
            samples.append(time.monotonic() - started)
    finally:
        await layer.group_discard("bench.baseline", channel)
        await layer.close_pools()
    return summarize(samples)


async def skip_locked_dequeue(database_url: str, *, seconds: float) -> dict:
    """Jobs per second taken by DEQUEUE_CONNECTIONS connections, one per transaction:
    lock the oldest undone job with SKIP LOCKED, mark it done, commit."""
    async with await psycopg.AsyncConnection.connect(
        database_url, autocommit=True
    ) as setup:
        await setup.execute(
            "CREATE TABLE IF NOT EXISTS jobs "
            "(id bigserial PRIMARY KEY, payload text, done boolean DEFAULT false)"
        )
        await setup.execute(
            "CREATE INDEX IF NOT EXISTS jobs_todo ON jobs (id) WHERE NOT done"
        )
        await setup.execute(
            "INSERT INTO jobs (payload) "
            "SELECT 'job ' || n FROM generate_series(1, %s) n",
            (DEQUEUE_JOBS,),
        )
    taken: list[float] = []
    deadline = time.monotonic() + seconds

    async def consumer() -> None:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            while time.monotonic() < deadline:
                started = time.monotonic()
                async with conn.transaction():
                    cursor = await conn.execute(
                        "SELECT id FROM jobs WHERE NOT done ORDER BY id "
                        "LIMIT 1 FOR UPDATE SKIP LOCKED"
                    )
                    row = await cursor.fetchone()
                    if row is None:
                        return
                    await conn.execute("UPDATE jobs SET done = true WHERE id = %s", row)
                taken.append(time.monotonic() - started)

    started = time.monotonic()
    await asyncio.gather(*(consumer() for _ in range(DEQUEUE_CONNECTIONS)))
    elapsed = time.monotonic() - started
    return {
        "jobs": len(taken),
        "per_second": round(len(taken) / elapsed, 1),
        "connections": DEQUEUE_CONNECTIONS,
        "latency_ms": summarize(taken),
    }


async def webhook_saturation(
    bases: list[str], signer: Signer, *, connections: int, seconds: float
) -> dict:
    """The inbound webhook's capacity: signed messages from ever new customers."""
    numbers = itertools.count()

    def request() -> tuple[str, str, bytes, dict[str, str]]:
        fields = inbound_fields(
            sid=new_sid(),
            customer=f"whatsapp:+19{next(numbers):09d}",
            body="saturation",
            name="Load",
        )
        fields["To"] = FLOWLESS_SENDER
        body, headers = signer.encode(MESSAGING_PATH, fields)
        return "POST", MESSAGING_PATH, body, headers

    outcome = await loadgen.saturate(
        bases, request, connections=connections, seconds=seconds
    )
    return outcome.as_json()
