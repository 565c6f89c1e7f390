"""Delivery status of outbound messages: forward only, final statuses stick."""

import logging

from django.db import transaction
from django.utils import timezone

from bots.events import publish_message_event
from bots.models import FINAL_STATUSES, STATUS_RANK, Message, MessageEvent, Status

logger = logging.getLogger(__name__)

_TIMESTAMP_FIELD = {
    Status.SENT: "sent_at",
    Status.DELIVERED: "delivered_at",
    Status.READ: "read_at",
}


# What a provider may report about an outbound message.
DELIVERY_STATUSES = frozenset([*STATUS_RANK, Status.FAILED, Status.UNDELIVERED])


def statuses_before(status: str) -> list[str]:
    """The statuses a message may move to `status` from."""
    if status in (Status.FAILED, Status.UNDELIVERED):
        return [s for s in STATUS_RANK if s not in FINAL_STATUSES]
    rank = STATUS_RANK[Status(status)]
    return [s for s, r in STATUS_RANK.items() if r < rank and s not in FINAL_STATUSES]


def advance_status(
    *,
    message_id: int,
    status: str,
    error_code: str = "",
    error_message: str = "",
    detail: str = "",
) -> bool:
    """Move a message's status forward to `status`; True if it moved.

    A status that is not ahead of the current one (a late `sent` after `delivered`,
    anything after a final status) changes nothing and returns False. Each move is
    appended to the message's event log and published after commit.
    """
    if status not in DELIVERY_STATUSES:
        raise ValueError(f"not an outbound delivery status: {status!r}")
    now = timezone.now()
    changes: dict[str, object] = {"status": status, "updated_at": now}
    if field := _TIMESTAMP_FIELD.get(Status(status)):
        changes[field] = now
    if status in (Status.FAILED, Status.UNDELIVERED):
        changes["error_code"] = error_code
        changes["error_message"] = error_message[:500]
    with transaction.atomic():
        moved = Message.objects.filter(
            pk=message_id, status__in=statuses_before(status)
        ).update(**changes)
        if not moved:
            return False
        MessageEvent.objects.create(
            message_id=message_id,
            status=status,
            error_code=error_code,
            detail=detail[:500],
        )
        message = Message.objects.get(pk=message_id)
        publish_message_event(message, "message.updated")
    return True


def apply_status_callback(
    *,
    sid: str,
    status: str,
    error_code: str = "",
    error_message: str = "",
    message_ref: str = "",
) -> bool:
    """Apply a Twilio status callback; True if the message's status moved.

    The message is found by its SID, or by our own id (`message_ref`, carried in the
    callback URL) when the callback beats the send's response. An unknown message
    or status is logged and ignored: Twilio must always get its 200.
    """
    message = (
        Message.objects.filter(provider_sid=sid).only("pk").first() if sid else None
    )
    if message is None and message_ref.isdigit():
        message = Message.objects.filter(pk=int(message_ref)).only("pk").first()
        if message is not None and sid:
            Message.objects.filter(pk=message.pk, provider_sid__isnull=True).update(
                provider_sid=sid
            )
    if message is None:
        logger.warning(
            "status callback for unknown message %s (%s) ignored", sid, status
        )
        return False
    if status not in DELIVERY_STATUSES:
        logger.info(
            "status callback %s for %s ignored: not a delivery status", status, sid
        )
        return False
    return advance_status(
        message_id=message.pk,
        status=status,
        error_code=error_code,
        error_message=error_message,
        detail="status callback",
    )
