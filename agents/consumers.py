"""The console's socket: join the worker's group, send a snapshot, then forward each
change as the fragments the page renders.

Each frame carries the group's sequence number. A console that sees a gap (the
channel layer delivers at most once) or reconnects asks for a snapshot, and a ping
every few seconds compares numbers, so nothing is missed for long.
"""

import json
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from agents import presence
from agents.rendering import render_fragments
from agents.selectors import get_worker
from agents.services import mark_read
from routing.events import worker_group
from routing.realtime import current_sequence

ALL = ["status", "offers", "conversations", "conversation"]


class ConsoleConsumer(AsyncWebsocketConsumer):
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
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await database_sync_to_async(presence.seen)(worker_id=self.worker.pk)
        await self.snapshot()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

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
            if self.opened is not None:  # on screen now: read
                await database_sync_to_async(mark_read)(
                    user=self.scope["user"], conversation_id=self.opened
                )
            await self.snapshot()
        elif kind == "resync":
            await self.snapshot()
        elif kind == "ping":
            await database_sync_to_async(presence.seen)(worker_id=self.worker.pk)
            latest = await database_sync_to_async(current_sequence)(self.group)
            seen = command.get("seq")
            if not isinstance(seen, int) or seen < latest:
                await self.snapshot()
            else:
                await self.send(text_data=json.dumps({"type": "pong", "seq": latest}))

    async def snapshot(self) -> None:
        seq = await database_sync_to_async(current_sequence)(self.group)
        # Without an open conversation the panel is left as the page has it.
        names = ALL if self.opened is not None else ALL[:-1]
        await self._send(names, seq=seq, snapshot=True)

    async def _send(
        self, names: list[str], *, seq: int, snapshot: bool = False
    ) -> None:
        fragments = []
        if names:
            fragments = await database_sync_to_async(render_fragments)(
                names,
                user=self.scope["user"],
                worker=self.worker,
                conversation_id=self.opened,
            )
        await self.send(
            text_data=json.dumps(
                {
                    "type": "fragments",
                    "seq": seq,
                    "snapshot": snapshot,
                    "fragments": fragments,
                }
            )
        )

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Any routing or message event for this worker: re-render, from the
        database, the fragments that event can change."""
        if message["type"].startswith("websocket."):
            await super().dispatch(message)
            return
        conversation = message.get("conversation_id")
        if message["type"] == "message.received" and conversation == self.opened:
            # On screen, so read: it adds nothing to the unread count.
            await database_sync_to_async(mark_read)(
                user=self.scope["user"], conversation_id=self.opened
            )
        await self._send(
            self.changed_by(message["type"], conversation),
            seq=int(message.get("seq") or 0),
        )

    def changed_by(self, kind: str, conversation: int | None) -> list[str]:
        """The fragments an event can change. Every event still sends a frame, if
        an empty one, so that its sequence number arrives."""
        if kind.startswith("message."):
            # A message moves its conversation up the list with one more unread;
            # a status (ticks) shows only in the open conversation.
            names = ["conversations"] if kind == "message.received" else []
            if self.opened is not None and conversation == self.opened:
                names.append("conversation")
            return names
        names = ["offers", "conversations"]
        if kind.startswith("worker."):
            names.insert(0, "status")
        if self.opened is not None:  # routing events may end the open one
            names.append("conversation")
        return names
