"""Agents: real console clients, as the browser is one.

Each logs in over HTTP, opens the console page and its WebSocket, sets itself
Available, and from then on reacts to the fragments the socket pushes: accepts each
offer, greets, answers each customer message (opening the conversation first, as a
click does), and completes the conversation after its last answer. Actions are the
console's htmx POSTs, with the CSRF token header. Like the console's script, it
pings every few seconds and asks for a snapshot after a gap in the sequence.
"""

import asyncio
import contextlib
import json
import random
import re
import secrets
import time
from dataclasses import dataclass, field

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.record import Record, Reply

OFFER = re.compile(r'data-reservation="(\d+)"')
ITEM = re.compile(r'<li><a href="\?conversation=(\d+)"(.*?)</li>', re.S)
UNREAD = re.compile(r'aria-label="(\d+) unread"')
OPENED = re.compile(r'data-conversation="(\d+)"')
MESSAGE_ID = re.compile(r'id="message-(\d+)"')
ERROR = re.compile(r'<div id="error"[^>]*>(.*?)</div>', re.S)
SELECTED = re.compile(r'<option value="([^"]+)" selected>')
PING_SECONDS = 10
ATTEMPTS = 3


@dataclass
class Held:
    """A conversation this agent accepted."""

    customer: str
    answered: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    due: bool = False


class Agent:
    def __init__(
        self,
        username: str,
        password: str,
        *,
        http: str,
        ws: str,
        record: Record,
        messages: int,
        capacity: int,
        think: float,
        customer_address: re.Pattern,
        rng: random.Random,
    ) -> None:
        self.username, self.password = username, password
        self.http, self.ws_url = http, ws
        self.record = record
        self.messages, self.capacity, self.think = messages, capacity, think
        self.customer_address = customer_address
        self.rng = rng
        self.client = httpx.AsyncClient(base_url=http, timeout=30)
        self.socket: ClientConnection | None = None
        self.held: dict[int, Held] = {}
        self.attempted: set[int] = set()
        self.opened: int | None = None
        self.seq = 0
        self.available = False
        self.tasks: set[asyncio.Task] = set()

    # -- session --------------------------------------------------------------------

    async def start(self) -> None:
        await self.client.get("/accounts/login/")
        response = await self.client.post(
            "/accounts/login/",
            data={
                "username": self.username,
                "password": self.password,
                "csrfmiddlewaretoken": self.client.cookies["csrftoken"],
            },
        )
        if response.status_code != 302:
            raise RuntimeError(
                f"{self.username} could not log in: {response.status_code}"
            )
        page = await self.client.get("/console/")
        page.raise_for_status()
        cookie = "; ".join(f"{k}={v}" for k, v in self.client.cookies.items())
        self.socket = await connect(
            f"{self.ws_url}/ws/console/",
            origin=self.http,  # type: ignore[arg-type]
            additional_headers={"Cookie": cookie},
            max_size=None,
        )
        await self.post("/console/status", {"activity": "Available"})

    async def run(self) -> None:
        """Handle frames until the socket closes."""
        assert self.socket is not None
        pinger = asyncio.create_task(self._ping())
        try:
            async for raw in self.socket:
                self._receive(json.loads(raw), time.time())
        except Exception:  # the socket dropped: count it, the run goes on
            self.record.counts["agent_socket_errors"] += 1
        finally:
            pinger.cancel()

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.socket is not None:
            await self.socket.close()
        await self.client.aclose()

    async def post(
        self, path: str, data: dict[str, str] | None = None
    ) -> httpx.Response | None:
        """An htmx POST; on a 5xx or a dropped connection, again (a person clicks
        again), up to three times. None if it never got through."""
        for _ in range(ATTEMPTS):
            try:
                response = await self.client.post(
                    path,
                    data=data or {},
                    headers={
                        "HX-Request": "true",
                        "X-CSRFToken": self.client.cookies.get("csrftoken", ""),
                    },
                )
            except httpx.HTTPError:
                self.record.counts["agent_http_failed"] += 1
            else:
                if response.status_code < 500:
                    return response
                self.record.counts["agent_http_5xx"] += 1
            await asyncio.sleep(1)
        return None

    async def _send(self, command: dict) -> None:
        if self.socket is not None:
            await self.socket.send(json.dumps(command))

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(PING_SECONDS)
            await self._send({"type": "ping", "seq": self.seq})

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.record.counts["agent_action_errors"] += 1

    # -- what the socket shows ------------------------------------------------------

    def _receive(self, frame: dict, now: float) -> None:
        self.record.counts["agent_frames"] += 1
        if frame.get("type") == "pong":
            if frame["seq"] > self.seq:
                self.record.counts["agent_resync_after_pong"] += 1
                self._spawn(self._send({"type": "resync"}))
            return
        if frame.get("type") != "fragments":
            return
        seq = int(frame.get("seq") or 0)
        first = int(frame.get("first") or seq)  # a frame may stand for first..seq
        if not frame.get("snapshot") and self.seq and first > self.seq + 1:
            self.record.counts["agent_sequence_gaps"] += 1
            self._spawn(self._send({"type": "resync"}))
        self.seq = max(self.seq, seq)
        for fragment in frame["fragments"]:
            handler = getattr(self, f"_on_{fragment['id']}", None)
            if handler is not None:
                handler(fragment["html"], now)

    def _on_status(self, html: str, now: float) -> None:
        found = SELECTED.search(html)
        if found is None:
            return
        if found.group(1) == "Available":
            self.available = True
        elif self.available:
            # An offer timed out and moved us to Offline: a person would notice.
            self.available = False
            self.record.counts["agent_moved_offline"] += 1
            self._spawn(self.post("/console/status", {"activity": "Available"}))

    def _on_offers(self, html: str, now: float) -> None:
        offers = [int(found) for found in OFFER.findall(html)]
        if len(offers) != len(set(offers)):
            self.record.counts["shown_twice_offers"] += 1
        for reservation in offers:
            self.record.offers_seen.setdefault(reservation, now)
            if reservation not in self.attempted:
                self.attempted.add(reservation)
                self._spawn(self.accept(reservation))

    def _on_conversations(self, html: str, now: float) -> None:
        items = ITEM.findall(html)
        if len(items) > self.capacity:
            self.record.counts["over_capacity_seen"] += 1
        for conversation, body in items:
            unread = UNREAD.search(body)
            if unread and int(unread.group(1)) > 0:
                self._notice(int(conversation), now)

    def _on_conversation(self, html: str, now: float) -> None:
        opened = OPENED.search(html)
        if opened is None:
            return
        ids = MESSAGE_ID.findall(html)
        if len(ids) != len(set(ids)):
            self.record.counts["shown_twice_messages"] += 1
        conversation = int(opened.group(1))
        held = self.held.get(conversation)
        pending = self.record.pending.get(held.customer) if held else None
        if pending is not None and pending.token in html:
            self._notice(conversation, now)

    def _notice(self, conversation: int, now: float) -> None:
        """A customer message of `conversation` is on screen: time it, answer it."""
        held = self.held.get(conversation)
        if held is None:
            return
        pending = self.record.pending.pop(held.customer, None)
        if pending is None:
            return
        self.record.sample("customer_to_agent_socket", now - pending.sent_at)
        held.due = True
        self._spawn(self.answer(conversation))

    # -- what the agent does --------------------------------------------------------

    async def _think(self) -> None:
        await asyncio.sleep(self.think * self.rng.uniform(0.5, 1.5))

    async def accept(self, reservation: int) -> None:
        await self._think()
        response = await self.post(f"/console/offers/{reservation}/accept")
        if response is None or not _succeeded(response):
            self.record.counts["accept_refused"] += 1
            return
        opened = OPENED.search(response.text)
        customer = self.customer_address.search(response.text)
        if opened is None or customer is None:
            self.record.counts["accept_without_conversation"] += 1
            return
        conversation = int(opened.group(1))
        self.record.accepted[conversation].add(self.username)
        self.record.counts["accepted"] += 1
        held = self.held[conversation] = Held(customer.group(0))
        self.opened = conversation
        await self._send({"type": "open", "conversation": conversation})
        async with held.lock:
            await self._think()
            await self._reply(conversation, f"Hola, soy {self.username}")

    async def answer(self, conversation: int) -> None:
        held = self.held[conversation]
        async with held.lock:
            if not held.due:
                return
            held.due = False
            if self.opened != conversation:  # a click on it in the list
                with contextlib.suppress(httpx.HTTPError):
                    await self.client.get(
                        f"/console/conversations/{conversation}",
                        headers={"HX-Request": "true"},
                    )
                self.opened = conversation
                await self._send({"type": "open", "conversation": conversation})
            await self._think()
            held.answered += 1
            await self._reply(conversation, f"respuesta {held.answered}")
            if held.answered >= self.messages:
                await self._think()
                await self.complete(conversation)

    async def _reply(self, conversation: int, text: str) -> None:
        token = f"a-{secrets.token_hex(4)}"
        reply = Reply(self.username, conversation, time.time())
        self.record.replies[token] = reply
        response = await self.post(
            f"/console/conversations/{conversation}/send",
            {"body": f"{text} {token}"},
        )
        reply.ok = _succeeded(response)
        if not reply.ok:
            self.record.counts["reply_refused"] += 1

    async def complete(self, conversation: int) -> None:
        response = await self.post(
            f"/console/conversations/{conversation}/complete",
            {"disposition": "resolved", "notes": "bench"},
        )
        if _succeeded(response):
            self.record.counts["completed"] += 1
            self.held.pop(conversation, None)
            if self.opened == conversation:
                self.opened = None
        else:
            self.record.counts["complete_refused"] += 1


def _succeeded(response: httpx.Response | None) -> bool:
    """Answered 200 with the console's error line empty."""
    if response is None or response.status_code != 200:
        return False
    error = ERROR.search(response.text)
    return not (error and error.group(1).strip())
