"""Inbound messages: store each webhook once, then process it off the request path."""

import logging
from collections.abc import Mapping
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from bots.events import publish_message_event
from bots.flows import services as flows
from bots.models import Author, Direction, Message, Status
from bots.services.conversations import (
    get_or_create_contact,
    get_or_create_sender,
    get_or_open_conversation,
)
from routing.jobqueue import enqueue_on_commit

logger = logging.getLogger(__name__)

PROCESS_JOB = "bots.jobs.process_inbound"


class InvalidWebhook(ValueError):
    """A webhook whose fields cannot make a message; the text names what is wrong."""


def media_from_fields(fields: Mapping[str, str]) -> list[dict[str, str]]:
    """`MediaUrl0..N` with their `MediaContentType0..N`, as Twilio numbers them."""
    try:
        count = int(fields.get("NumMedia") or 0)
    except ValueError:
        raise InvalidWebhook(
            f"NumMedia is not a number: {fields.get('NumMedia')!r}"
        ) from None
    media = []
    for index in range(min(count, 10)):
        url = fields.get(f"MediaUrl{index}", "")
        if url:
            content_type = fields.get(f"MediaContentType{index}", "")
            media.append({"url": url, "content_type": content_type})
    return media


def store_inbound(*, fields: Mapping[str, str]) -> tuple[Message, bool]:
    """Store an inbound webhook as a Message, once per MessageSid.

    Returns the message and whether this call stored it. A repeated MessageSid
    (Twilio retrying, or the same post racing itself) returns the stored row and
    queues nothing. Processing is queued after commit; if the broker is down the
    row stays unprocessed until beat's sweep. Raises InvalidWebhook.
    """
    sid = (fields.get("MessageSid") or fields.get("SmsMessageSid") or "").strip()
    from_address = (fields.get("From") or "").strip()
    if not sid:
        raise InvalidWebhook("MessageSid is missing")
    if not from_address:
        raise InvalidWebhook("From is missing")
    to_address = (fields.get("To") or "").strip()
    if not to_address:
        raise InvalidWebhook("To is missing")
    message = Message(
        direction=Direction.INBOUND,
        author=Author.CONTACT,
        from_address=from_address,
        to_address=to_address,
        body=fields.get("Body", ""),
        media=media_from_fields(fields),
        provider_sid=sid,
        status=Status.RECEIVED,
        raw=dict(fields),
    )
    try:
        with transaction.atomic():
            message.save()
            enqueue_on_commit(PROCESS_JOB, message.pk)
    except IntegrityError:
        existing = Message.objects.filter(provider_sid=sid).first()
        if existing is None:  # the first insert rolled back after all
            raise
        logger.info("duplicate inbound webhook %s ignored", sid)
        return existing, False
    return message, True


def process_inbound(*, message_id: int) -> Message | None:
    """Attach an inbound message to its contact's open conversation and announce it.

    Idempotent: a message already processed (or unknown) is a no-op returning None.
    In the bot phase the message resumes the waiting flow or starts the sender's;
    the conversation row stays locked meanwhile, so a contact's messages are taken
    one at a time, in order.
    """
    with transaction.atomic():
        message = (
            Message.objects.select_for_update()
            .filter(
                pk=message_id, direction=Direction.INBOUND, processed_at__isnull=True
            )
            .first()
        )
        if message is None:
            return None
        contact = get_or_create_contact(
            address=message.from_address,
            profile_name=message.raw.get("ProfileName", ""),
        )
        sender = get_or_create_sender(address=message.to_address)
        conversation = get_or_open_conversation(contact=contact, sender=sender)
        now = timezone.now()
        message.conversation = conversation
        message.processed_at = now
        message.save(update_fields=["conversation", "processed_at", "updated_at"])
        conversation.last_message_at = message.created_at
        conversation.save(update_fields=["last_message_at"])
        publish_message_event(message, "message.received")
        flows.on_inbound(conversation=conversation, message=message)
    return message


def list_unprocessed_ids(*, older_than_seconds: float, limit: int = 500) -> list[int]:
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return list(
        Message.objects.filter(
            direction=Direction.INBOUND,
            processed_at__isnull=True,
            created_at__lte=cutoff,
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
