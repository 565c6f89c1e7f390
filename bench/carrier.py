"""Twilio's part: deliver what Switchboard sent, and report its status.

With no Twilio credentials the stack's backend only returns a SID, so the carrier
reads what was handed over from the database (a row with a `provider_sid`), puts
it on the customer's phone, and posts status callbacks for it, as Twilio does:
sent, delivered, read, some twice and some out of order. A message is never
reported before Switchboard has it as handed over.
"""

import asyncio
import random
import time

import psycopg

from bench.customers import Customer, Delivered, Webhooks
from bench.record import Record
from bench.twilio import STATUS_PATH, status_fields

POLL_SECONDS = 0.1
# An id below the newest one that is still not visible belongs to a transaction not
# yet committed (ids are taken at insert, rows appear at commit), or to one rolled
# back (a duplicate webhook's insert): wait this long for it, then give up on it.
GAP_SECONDS = 30
STATUSES = ["sent", "delivered", "read"]

# Every row, either way, above the last id all of whose predecessors were settled.
NEW_ROWS = """
SELECT id, direction, to_address, from_address, author, provider_sid, status
FROM bots_message
WHERE id > %s
ORDER BY id
"""


class Carrier:
    def __init__(
        self,
        database_url: str,
        customers: dict[str, Customer],
        webhooks: Webhooks,
        record: Record,
        *,
        duplicate_rate: float,
        reorder_rate: float,
        rng: random.Random,
    ) -> None:
        self.database_url = database_url
        self.customers = customers
        self.webhooks = webhooks
        self.record = record
        self.duplicate_rate = duplicate_rate
        self.reorder_rate = reorder_rate
        self.rng = rng
        self.handed: set[int] = set()
        self.visible: set[int] = set()
        self.gaps: dict[int, float] = {}
        self.callbacks: set[asyncio.Task] = set()
        self.stopped = asyncio.Event()
        self.waiting = 0  # outbound rows not yet handed over at the last poll

    async def run(self) -> None:
        low = 0
        async with await psycopg.AsyncConnection.connect(
            self.database_url, autocommit=True
        ) as connection:
            while not self.stopped.is_set():
                cursor = await connection.execute(NEW_ROWS, (low,))
                low = self._read(low, await cursor.fetchall())
                await asyncio.sleep(POLL_SECONDS)

    def _read(self, low: int, rows: list[tuple]) -> int:
        """Hand over what is new; the id to read above next time."""
        waiting = []
        for id, direction, to, sender, author, sid, status in rows:
            self.visible.add(id)
            if direction != "outbound" or status == "failed":
                continue
            if not sid:
                waiting.append(id)
            elif id not in self.handed:
                self.handed.add(id)
                self._hand_over(id, to, sender, author, sid)
        self.waiting = len(waiting)
        top = max(self.visible, default=low)
        now = time.monotonic()
        unseen = [id for id in range(low + 1, top) if id not in self.visible]
        for id in unseen:
            self.gaps.setdefault(id, now)
        held = [id for id in unseen if now - self.gaps[id] < GAP_SECONDS] + waiting
        low = min(held) - 1 if held else top
        self.visible = {id for id in self.visible if id > low}
        self.gaps = {id: since for id, since in self.gaps.items() if id > low}
        return low

    def _hand_over(self, id: int, to: str, sender: str, author: str, sid: str) -> None:
        customer = self.customers.get(to)
        if customer is not None:
            customer.inbox.put_nowait(Delivered(id, author))
        else:
            self.record.counts["outbound_to_unknown_customer"] += 1
        task = asyncio.create_task(self._report(id, sid, to, sender))
        self.callbacks.add(task)
        task.add_done_callback(self.callbacks.discard)

    def plan(self) -> list[str]:
        """The callbacks one message gets: in order, or not; once each, or not."""
        statuses = list(STATUSES)
        if self.rng.random() < self.reorder_rate:
            first = self.rng.randrange(len(statuses) - 1)
            statuses[first], statuses[first + 1] = statuses[first + 1], statuses[first]
            self.record.counts["callbacks_reordered"] += 1
        if self.rng.random() < self.duplicate_rate:
            again = self.rng.randrange(len(statuses))
            statuses.insert(again + 1, statuses[again])
            self.record.counts["callbacks_duplicated"] += 1
        return statuses

    async def _report(self, id: int, sid: str, to: str, sender: str) -> None:
        path = f"{STATUS_PATH}?message={id}"
        for status in self.plan():
            await asyncio.sleep(self.rng.uniform(0.02, 0.2))
            fields = status_fields(sid=sid, status=status, to=to, sender=sender)
            code = await self.webhooks.post("status", path, fields)
            self.record.callbacks[id].append((status, code))

    async def drain(self, timeout: float) -> None:
        """Wait for every callback in flight (up to `timeout` seconds), then stop."""
        deadline = time.monotonic() + timeout
        while self.callbacks and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.stopped.set()
        for task in list(self.callbacks):
            task.cancel()
