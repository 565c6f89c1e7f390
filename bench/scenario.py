"""The load: agents log in and wait; customers arrive over the ramp and talk; the
carrier delivers and reports. Bounded: it stops when every customer is done or
when the duration is up, then drains until the system is quiet."""

import asyncio
import random
import re
import time
from dataclasses import dataclass

import psycopg

from bench import cpu
from bench.agents import Agent
from bench.carrier import Carrier
from bench.config import Config
from bench.customers import Customer, Webhooks
from bench.pgstat import Sampler
from bench.record import Record
from bench.stack import Stack
from bench.twilio import Signer, customer_address

BUSY = """
SELECT
  (SELECT count(*) FROM bots_message
    WHERE direction = 'inbound' AND processed_at IS NULL),
  (SELECT count(*) FROM bots_message
    WHERE direction = 'outbound' AND status IN ('pending', 'submitting'))
"""


@dataclass
class Outcome:
    record: Record
    customers: list[Customer]
    agents: int
    load_seconds: float
    drained: bool
    cores: dict[str, float]
    postgres: dict


async def run(
    config: Config, stack: Stack, usernames: list[str], password: str
) -> Outcome:
    rng = random.Random(config.seed)
    record = Record()
    stop = asyncio.Event()
    run_id = f"{rng.randrange(1000, 9999)}"
    webhooks = Webhooks(
        stack.web.webhooks, Signer(stack.auth_token, stack.web.public), record
    )
    customers = _customers(config, run_id, webhooks, record, stop, rng)
    agents = _agents(config, stack, usernames, password, run_id, record, rng)
    carrier = Carrier(
        stack.cluster.url(),
        customers,
        webhooks,
        record,
        duplicate_rate=config.status_duplicate_rate,
        reorder_rate=config.status_reorder_rate,
        rng=random.Random(rng.random()),
    )
    started = time.monotonic()
    await asyncio.gather(*(agent.start() for agent in agents))
    record.counts["agent_login_seconds_x1000"] = int(
        (time.monotonic() - started) * 1000
    )
    running = [asyncio.create_task(agent.run()) for agent in agents]
    running.append(asyncio.create_task(carrier.run()))
    groups = {name: process.pid for name, process in stack.processes.items()}
    sampler, sampled = Sampler(stack.cluster.url()), asyncio.Event()
    running.append(asyncio.create_task(sampler.run(sampled)))
    try:
        before = cpu.snapshot(groups)
        load_seconds = await _load(config, customers, record, stop)
        cores = cpu.cores(before, cpu.snapshot(groups), load_seconds)
        sampled.set()
        await asyncio.sleep(0.2)  # the sampler reads its closing counters
        drained = await _drain(stack.cluster.url(), carrier, agents, record, config)
    finally:
        stop.set()
        carrier.stopped.set()
        await asyncio.gather(
            *(agent.stop() for agent in agents), return_exceptions=True
        )
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await webhooks.close()
    return Outcome(
        record,
        list(customers.values()),
        len(agents),
        load_seconds,
        drained,
        cores,
        sampler.summary(load_seconds),
    )


def _customers(
    config: Config,
    run_id: str,
    webhooks: Webhooks,
    record: Record,
    stop: asyncio.Event,
    rng: random.Random,
) -> dict[str, Customer]:
    """The run's customers by address; each run has addresses of its own."""
    customers = {}
    for index in range(config.customers):
        address = customer_address(index, run_id)
        customers[address] = Customer(
            index=index,
            address=address,
            name=f"Cliente {index}",
            messages=config.messages,
            think=config.think,
            retry_rate=config.webhook_retry_rate,
            webhooks=webhooks,
            record=record,
            stop=stop,
            rng=random.Random(rng.random()),
        )
    return customers


def _agents(
    config: Config,
    stack: Stack,
    usernames: list[str],
    password: str,
    run_id: str,
    record: Record,
    rng: random.Random,
) -> list[Agent]:
    """One console client per agent, spread over the web servers."""
    return [
        Agent(
            username,
            password,
            http=stack.web.http[number % len(stack.web.http)],
            ws=stack.web.ws[number % len(stack.web.ws)],
            record=record,
            messages=config.messages,
            capacity=config.capacity,
            think=config.think,
            customer_address=re.compile(rf"whatsapp:\+1{run_id}\d{{6}}"),
            rng=random.Random(rng.random()),
        )
        for number, username in enumerate(usernames)
    ]


async def _load(
    config: Config, customers: dict[str, Customer], record: Record, stop: asyncio.Event
) -> float:
    """Customers arrive evenly over the ramp; returns the load's length in seconds."""
    spacing = config.ramp / max(len(customers), 1)
    record.mark("load_start")
    started = time.monotonic()
    tasks = [
        asyncio.create_task(customer.run(arrival=number * spacing))
        for number, customer in enumerate(customers.values())
    ]
    _, late = await asyncio.wait(tasks, timeout=config.duration)
    if late:
        record.counts["load_stopped_by_duration"] = 1
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    record.mark("load_end")
    return time.monotonic() - started


async def _drain(
    database_url: str,
    carrier: Carrier,
    agents: list[Agent],
    record: Record,
    config: Config,
) -> bool:
    """Wait until nothing is left to process, send, report or show; True if so."""
    deadline = time.monotonic() + (10 if config.quick else 30)
    quiet_since = None
    async with await psycopg.AsyncConnection.connect(
        database_url, autocommit=True
    ) as connection:
        while time.monotonic() < deadline:
            cursor = await connection.execute(BUSY)
            unprocessed, unsent = await cursor.fetchone() or (0, 0)
            busy = (
                unprocessed
                or unsent
                or carrier.waiting
                or carrier.callbacks
                or record.pending
                or any(agent.tasks for agent in agents)
            )
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 0.5:
                break
            await asyncio.sleep(0.1)
        else:
            record.counts["drain_timed_out"] = 1
    record.mark("drained")
    await carrier.drain(timeout=1)
    return "drain_timed_out" not in record.counts
