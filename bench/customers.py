"""Customers: each writes to the demo WhatsApp sender through signed Twilio webhooks,
runs the tutorial flow ("hola" → menu, "2" → an agent), then writes a few more
messages, each after the agent's answer, as a person would.

What a customer's phone receives comes from `bench.carrier`, which plays Twilio's
part: it delivers each message Switchboard handed to its backend.
"""

import asyncio
import contextlib
import itertools
import random
import secrets
import time
from dataclasses import dataclass, field

import httpx

from bench.record import Pending, Record, Webhook
from bench.twilio import MESSAGING_PATH, Signer, inbound_fields, new_sid

TWILIO_TIMEOUT = 15


@dataclass
class Delivered:
    """An outbound message as the customer's phone gets it."""

    id: int
    author: str


class Webhooks:
    """Posts signed webhooks to the stack's web servers, round robin."""

    def __init__(self, bases: list[str], signer: Signer, record: Record) -> None:
        self.bases = itertools.cycle(bases)
        self.signer = signer
        self.record = record
        # Twilio waits 15 s for an answer; later is no answer at all.
        self.client = httpx.AsyncClient(
            timeout=TWILIO_TIMEOUT, limits=httpx.Limits(max_connections=64)
        )

    async def post(self, kind: str, path: str, fields: dict[str, str]) -> int:
        """POST once; the HTTP status (0 when the request failed)."""
        content, headers = self.signer.encode(path, fields)
        started = time.monotonic()
        try:
            response = await self.client.post(
                f"{next(self.bases)}{path}", content=content, headers=headers
            )
        except httpx.HTTPError:
            self.record.counts[f"webhooks_{kind}_failed"] += 1
            return 0
        self.record.webhook_acked(
            kind, time.monotonic() - started, response.status_code
        )
        return response.status_code

    async def close(self) -> None:
        await self.client.aclose()


@dataclass
class Customer:
    index: int
    address: str
    name: str
    messages: int
    think: float
    retry_rate: float
    webhooks: Webhooks
    record: Record
    stop: asyncio.Event
    rng: random.Random
    inbox: asyncio.Queue = field(default_factory=asyncio.Queue)
    finished: bool = False
    stage: str = "waiting"

    async def run(self, arrival: float) -> None:
        await self._pause(arrival)
        if self.stop.is_set():
            return
        self.stage = "menu"
        await self.say("hola")
        if await self.expect("bot") is None:
            return
        await self._pause(self.think * self.rng.uniform(0.5, 1.5))
        if self.stop.is_set():
            return
        self.stage = "queued"
        await self.say("2")
        if await self.expect("agent") is None:
            return
        for number in range(1, self.messages + 1):
            await self._pause(self.think * self.rng.uniform(0.5, 1.5))
            if self.stop.is_set():
                return
            self.stage = f"message {number}"
            token = f"c{self.index}m{number}-{secrets.token_hex(3)}"
            self.record.pending[self.address] = Pending(token, time.time())
            await self.say(f"pregunta {number} {token}")
            if await self.expect("agent") is None:
                return
        self.stage = "done"
        self.finished = True

    async def say(self, body: str) -> None:
        """Post one inbound message; now and then Twilio posts it twice at once."""
        sid = new_sid()
        fields = inbound_fields(
            sid=sid, customer=self.address, body=body, name=self.name
        )
        webhook = self.record.inbound[sid] = Webhook(sid, self.address, body)
        posts = [self.webhooks.post("inbound", MESSAGING_PATH, fields)]
        if self.rng.random() < self.retry_rate:
            self.record.counts["webhooks_inbound_retried"] += 1
            posts.append(self._again(fields))
        webhook.statuses = list(await asyncio.gather(*posts))

    async def _again(self, fields: dict[str, str]) -> int:
        await asyncio.sleep(self.rng.uniform(0, 0.02))
        return await self.webhooks.post("inbound", MESSAGING_PATH, fields)

    async def expect(self, author: str) -> Delivered | None:
        """The next message from `author` on the phone; None once the run stops."""
        while not self.stop.is_set():
            getting = asyncio.ensure_future(self.inbox.get())
            stopping = asyncio.ensure_future(self.stop.wait())
            done, _ = await asyncio.wait(
                {getting, stopping}, return_when=asyncio.FIRST_COMPLETED
            )
            if getting not in done:
                getting.cancel()
                return None
            stopping.cancel()
            message = getting.result()
            if message.author == author:
                return message
            self.record.counts[f"customer_got_unexpected_{message.author}"] += 1
        return None

    async def _pause(self, seconds: float) -> None:
        """Wait `seconds`, or until the run stops."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=seconds)
