"""The simulator's phone listens here for what Switchboard sends to its customer."""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.template.loader import render_to_string

from bots.events import thread_group
from bots.simulator import selectors


def _render_transcript(sender_id: int, customer: str) -> str:
    sender = selectors.get_sender(sender_id=sender_id)
    if sender is None:
        return ""
    messages = selectors.list_thread_messages(sender=sender, customer=customer)
    return render_to_string(
        "bots/simulator.html#transcript",
        {"sender": sender, "customer": customer, "messages": messages},
    )


def _thread_of(sender_id: int, customer: str) -> str | None:
    sender = selectors.get_sender(sender_id=sender_id)
    if sender is None or not selectors.customer_matches_sender(
        sender=sender, customer=customer
    ):
        return None
    return thread_group(sender.address, customer)


class SimulatorConsumer(AsyncWebsocketConsumer):
    """Joins a thread's group; sends the transcript on connect and on each change."""

    async def connect(self) -> None:
        if not settings.SWITCHBOARD_SIMULATOR:
            await self.close(code=4403)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        sender_id = (query.get("sender") or [""])[0]
        self.customer = (query.get("customer") or [""])[0]
        self.sender_id = int(sender_id) if sender_id.isdigit() else 0
        self.group = await database_sync_to_async(_thread_of)(
            self.sender_id, self.customer
        )
        if self.group is None:
            await self.close(code=4404)
            return
        # Subscribe first, then send the snapshot: nothing in between is missed.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_transcript()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def send_transcript(self) -> None:
        html = await database_sync_to_async(_render_transcript)(
            self.sender_id, self.customer
        )
        await self.send(text_data=html)

    async def message_received(self, event: dict) -> None:
        await self.send_transcript()

    async def message_created(self, event: dict) -> None:
        await self.send_transcript()

    async def message_updated(self, event: dict) -> None:
        await self.send_transcript()
