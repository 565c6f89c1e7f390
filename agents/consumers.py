"""The console's socket: join the worker's group, send a snapshot, then forward each
change as the fragments the page renders.

Each frame carries the group's sequence number. A console that sees a gap (the
channel layer delivers at most once) or reconnects asks for a snapshot, and a ping
every few seconds compares numbers, so nothing is missed for long.
"""

import asyncio
import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from agents import presence
from agents.rendering import render_fragments, render_messages
from agents.selectors import get_worker
from agents.services import mark_read
from routing.events import worker_group
from routing.realtime import current_sequence

logger = logging.getLogger(__name__)

ALL = ["status", "offers", "conversations", "conversation"]


class ConsoleConsumer(AsyncWebsocketConsumer):
    """One agent's console. Events only mark fragments as changed; one render
    loop per socket sends them, so a burst of events costs one render, and the
    socket's channel never backs up while a render runs."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.worker = await database_sync_to_async(get_worker)(user=user)
        if self.worker is None:
            await self.close(code=4403)
            return
        self.group = worker_group(self.worker.pk)
        self.opened: int | None = None
        self.changed: set[str] = set()  # fragments to send
        self.updated: set[int] = set()  # messages of the open conversation to send
        self.first: int | None = None  # the first sequence number not yet sent
        self.last = 0  # the last sequence number heard
        self.wants_snapshot = False
        self.unread_on_screen = False
        self.renderer: asyncio.Task | None = None
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await database_sync_to_async(presence.seen)(worker_id=self.worker.pk)
        self.request(snapshot=True)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        renderer = getattr(self, "renderer", None)
        if renderer is not None:
            renderer.cancel()

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None
    ) -> None:
        try:
            command = json.loads(text_data or "{}")
        except ValueError:
            return
        if not isinstance(command, dict):
            return  # not a command: ignored, the socket stays
        kind = command.get("type")
        if kind == "open":
            opened = str(command.get("conversation"))
            self.opened = int(opened) if opened.isdigit() else None
            self.unread_on_screen = self.opened is not None  # on screen now: read
            self.request(snapshot=True)
        elif kind == "resync":
            self.request(snapshot=True)
        elif kind == "ping":
            await database_sync_to_async(presence.seen)(worker_id=self.worker.pk)
            latest = await database_sync_to_async(current_sequence)(self.group)
            seen = command.get("seq")
            if not isinstance(seen, int) or seen < latest:
                self.request(snapshot=True)
            else:
                await self.send(text_data=json.dumps({"type": "pong", "seq": latest}))

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Any routing or message event for this worker: mark the fragments it can
        change; the render loop sends them from the database."""
        if message["type"].startswith("websocket."):
            await super().dispatch(message)
            return
        conversation = message.get("conversation_id")
        on_screen = self.opened is not None and conversation == self.opened
        if message["type"] == "message.received" and on_screen:
            # On screen, so read: it adds nothing to the unread count.
            self.unread_on_screen = True
        if message["type"] == "message.updated" and on_screen:
            self.updated.add(int(message["message_id"]))  # its ticks
        self.request(
            self.changed_by(message["type"], conversation),
            seq=int(message.get("seq") or 0),
        )

    def changed_by(self, kind: str, conversation: int | None) -> list[str]:
        """The fragments an event can change. Every event still reaches the
        console, in a frame that may be empty, so that its sequence number does."""
        if kind.startswith("message."):
            # A message moves its conversation up the list with one more unread
            # and joins the open conversation; a status (ticks) changes only that
            # message, sent on its own (see dispatch).
            names = ["conversations"] if kind == "message.received" else []
            on_screen = self.opened is not None and conversation == self.opened
            if on_screen and kind != "message.updated":
                names.append("conversation")
            return names
        names = ["offers", "conversations"]
        if kind.startswith("worker."):
            names.insert(0, "status")
        if self.opened is not None:  # routing events may end the open one
            names.append("conversation")
        return names

    def request(
        self, names: Iterable[str] = (), *, seq: int = 0, snapshot: bool = False
    ) -> None:
        self.changed.update(names)
        if seq:
            self.first = seq if self.first is None else min(self.first, seq)
            self.last = max(self.last, seq)
        self.wants_snapshot |= snapshot
        if self.renderer is None or self.renderer.done():
            self.renderer = asyncio.ensure_future(self._render_loop())

    async def _render_loop(self) -> None:
        """Send what was asked for, then what was asked for meanwhile, in order.
        A frame that fails is logged and skipped: the console sees the gap in
        the sequence and asks for a snapshot."""
        while self.wants_snapshot or self.first is not None:
            try:
                await self._render_next()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("console frame for %s failed", self.group)

    async def _render_next(self) -> None:
        read, self.unread_on_screen = self.unread_on_screen, False
        if self.wants_snapshot:
            self.wants_snapshot, self.changed, self.first = False, set(), None
            self.updated = set()
            # Read first: the render below shows at least everything up to it.
            seq = await database_sync_to_async(current_sequence)(self.group)
            self.last = max(self.last, seq)
            # Without an open conversation the panel is left as the page has it.
            names = ALL if self.opened is not None else ALL[:-1]
            await self._send(names, seq=seq, snapshot=True, read=read)
            return
        names = [name for name in ALL if name in self.changed]
        # The whole conversation, when sent, has every message's ticks.
        updated = [] if "conversation" in names else sorted(self.updated)
        first, seq = self.first, self.last
        self.changed, self.first, self.updated = set(), None, set()
        await self._send(names, seq=seq, first=first, read=read, updated=updated)

    async def _send(
        self,
        names: list[str],
        *,
        seq: int,
        first: int | None = None,
        snapshot: bool = False,
        read: bool = False,
        updated: Sequence[int] = (),
    ) -> None:
        """One frame. With `read`, the open conversation is marked read and sent
        in the same step: a message marked read is always one shown."""
        opened = self.opened
        if read and opened is not None and "conversation" not in names:
            names = [*names, "conversation"]
        fragments = []
        if names:
            fragments = await database_sync_to_async(self._render)(
                names, opened, read and opened is not None
            )
        if updated and opened is not None:
            fragments += await database_sync_to_async(render_messages)(
                updated, conversation_id=opened
            )
        frame: dict[str, Any] = {
            "type": "fragments",
            "seq": seq,
            "snapshot": snapshot,
            "fragments": fragments,
        }
        if first is not None and first != seq:
            frame["first"] = first  # the frame stands for events first..seq
        await self.send(text_data=json.dumps(frame))

    def _render(
        self, names: list[str], opened: int | None, read: bool
    ) -> list[dict[str, str]]:
        user = self.scope["user"]
        if read and opened:
            mark_read(user=user, conversation_id=opened)
        return render_fragments(
            names, user=user, worker=self.worker, conversation_id=opened
        )
