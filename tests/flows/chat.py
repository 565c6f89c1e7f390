"""The customer's side of a conversation with a flow, on the real server path.

Each message is a signed Twilio webhook, then the job that processes it (the
test database never commits, so on-commit jobs are run by hand here).
"""

import itertools
from collections.abc import Callable
from typing import Any

from bots import messaging
from bots.flows.importing import import_flow
from bots.jobs import deliver_message, process_inbound
from bots.models import Author, Direction, Message, Sender, Status
from tests.conftest import twilio_payload

WEBHOOK = "/webhooks/twilio/messaging"
CUSTOMER = "whatsapp:+573245634749"  # the recorded payloads' customer
OUR_NUMBER = "whatsapp:+14155238886"
_sids = itertools.count(1)


def bind(
    sender: Sender, definition: dict[str, Any], name: str = "bot", **kwargs: Any
) -> None:
    """Import `definition` as flow `name` and make it the sender's flow."""
    revision = import_flow(definition=definition, name=name, **kwargs)
    sender.flow = revision.flow
    sender.save(update_fields=["flow"])


def say(twilio_post: Callable, body: str, **fields: str) -> Message:
    """The customer writes `body`; the webhook is stored, then processed."""
    sid = f"SM{next(_sids):032x}"
    payload = twilio_payload("whatsapp_text", Body=body, MessageSid=sid, **fields)
    response = twilio_post(WEBHOOK, payload)
    assert response.status_code == 200, response.content
    message = Message.objects.get(provider_sid=sid)
    process_inbound(message.pk)
    message.refresh_from_db()
    assert message.processed_at is not None
    return message


def bot_bodies() -> list[str]:
    """What the bot has said so far (stored outbound messages), oldest first."""
    return list(
        Message.objects.filter(direction=Direction.OUTBOUND, author=Author.BOT)
        .order_by("created_at", "pk")
        .values_list("body", flat=True)
    )


def deliver_pending() -> list[messaging.OutboundMessage]:
    """Run the delivery job of every pending message; returns what the backend got."""
    before = len(messaging.outbox)
    pending = Message.objects.filter(status=Status.PENDING).order_by("pk")
    for message_id in pending.values_list("pk", flat=True):
        deliver_message(message_id)
    return list(messaging.outbox[before:])
