"""Outbound messages: store first, then a Celery job hands them to the backend.

`send()` is the one way anything in Switchboard talks to a customer: the bot, an
agent, a reminder script. The backend is chosen by SWITCHBOARD_MESSAGING_BACKEND at
call time, as Django chooses EMAIL_BACKEND.
"""

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from bots.events import publish_message_event
from bots.messaging.backends.base import (
    BaseBackend,
    OutboundMessage,
    PermanentSendError,
    TransientSendError,
)
from bots.models import (
    Author,
    ChannelKind,
    Direction,
    Message,
    MessageEvent,
    Sender,
    Status,
    Template,
    kind_of_address,
)
from bots.services.conversations import get_or_create_contact, get_or_open_conversation
from bots.services.status import advance_status
from routing.jobqueue import enqueue_on_commit

logger = logging.getLogger(__name__)

DELIVER_JOB = "bots.jobs.deliver_message"
WHATSAPP_WINDOW = timedelta(hours=24)
SCHEDULE_MIN = timedelta(minutes=15)
SCHEDULE_MAX = timedelta(days=35)
# If the job queued at commit never runs (broker down), the sweeper sends after this.
SWEEP_GRACE = timedelta(seconds=30)
OUTSIDE_WINDOW_CODE = "63016"
# A message still submitting after this had its worker die mid-send.
INTERRUPTED_AFTER = timedelta(minutes=10)
INTERRUPTED_REASON = "sending was interrupted; not retried to avoid a duplicate"
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class MessagingError(ValueError):
    """A message that cannot be sent as asked; the text says why."""


class OutsideWhatsAppWindow(MessagingError):
    pass


class TemplateVariableMissing(MessagingError):
    pass


class ScheduleOutOfRange(MessagingError):
    pass


class NotCancellable(MessagingError):
    pass


def get_backend(backend: str | None = None) -> BaseBackend:
    """The backend named by `backend`, else by SWITCHBOARD_MESSAGING_BACKEND."""
    return import_string(backend or settings.SWITCHBOARD_MESSAGING_BACKEND)()


def render_template(template: Template, variables: Mapping[str, object]) -> str:
    """The body with `{{1}}`... filled; TemplateVariableMissing names any gap."""
    values = {str(key): str(value) for key, value in variables.items()}
    missing = sorted(
        {name for name in _PLACEHOLDER.findall(template.body) if not values.get(name)},
        key=lambda name: (len(name), name),
    )
    if missing:
        names = ", ".join("{{" + name + "}}" for name in missing)
        raise TemplateVariableMissing(
            f"template {template.name} needs a value for {names}"
        )
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template.body)


def last_inbound_at(*, sender: Sender, customer_address: str) -> datetime | None:
    return (
        Message.objects.filter(
            direction=Direction.INBOUND,
            from_address=customer_address,
            to_address=sender.address,
        )
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )


def within_whatsapp_window(*, sender: Sender, customer_address: str) -> bool:
    last = last_inbound_at(sender=sender, customer_address=customer_address)
    return last is not None and timezone.now() - last < WHATSAPP_WINDOW


def _resolve_sender(sender: Sender | str) -> Sender:
    if isinstance(sender, Sender):
        return sender
    found = Sender.objects.filter(address=sender).first()
    if found is None:
        raise MessagingError(
            f"no sender with address {sender!r}; add it in admin first"
        )
    return found


def send(
    *,
    sender: Sender | str,
    to: str,
    body: str = "",
    media_urls: Sequence[str] = (),
    template: Template | str | None = None,
    variables: Mapping[str, object] | None = None,
    send_at: datetime | None = None,
    agent=None,
    author: str | None = None,
) -> Message:
    """Store an outbound message to `to` from `sender` and queue it for sending.

    With `template` (an instance or a name) the body is filled from `variables`.
    With `send_at` (15 minutes to 35 days ahead) the message is held and sent by
    beat when due; `cancel()` stops it until then. Raises MessagingError (or a
    subclass) naming the problem: unknown sender, channel mismatch, empty message,
    a template variable missing, a WhatsApp free-form message outside the 24-hour
    window, `send_at` out of range.
    """
    sender = _resolve_sender(sender)
    to = to.strip()
    if kind_of_address(to) != sender.kind:
        raise MessagingError(
            f"{to!r} is not a {sender.get_kind_display()} address; "
            f"sender {sender.address} "
            "can only write to its own channel"
        )
    if isinstance(template, str):
        template = _find_template(template)
    if template is not None:
        body = render_template(template, variables or {})
    if not body.strip() and not media_urls:
        raise MessagingError("a message needs a body, media or a template")
    now = timezone.now()
    if send_at is not None:
        if timezone.is_naive(send_at):
            raise ScheduleOutOfRange("send_at must carry a time zone")
        if not (now + SCHEDULE_MIN <= send_at <= now + SCHEDULE_MAX):
            raise ScheduleOutOfRange(
                "send_at must be between 15 minutes and 35 days from now, "
                f"not {send_at.isoformat()}"
            )
    elif (
        sender.kind == ChannelKind.WHATSAPP
        and template is None
        and not within_whatsapp_window(sender=sender, customer_address=to)
    ):
        raise OutsideWhatsAppWindow(
            f"{to} has not written to {sender.address} in the last 24 hours: "
            "WhatsApp only accepts a template outside that window"
        )
    with transaction.atomic():
        contact = get_or_create_contact(address=to)
        conversation = get_or_open_conversation(contact=contact, sender=sender)
        message = Message.objects.create(
            conversation=conversation,
            direction=Direction.OUTBOUND,
            author=author or (Author.AGENT if agent is not None else Author.BOT),
            agent=agent,
            from_address=sender.address,
            to_address=to,
            body=body,
            media=[{"url": url, "content_type": ""} for url in media_urls],
            template=template,
            template_variables={str(k): str(v) for k, v in (variables or {}).items()},
            status=Status.SCHEDULED if send_at else Status.PENDING,
            send_at=send_at,
            next_attempt_at=None if send_at else now + SWEEP_GRACE,
        )
        MessageEvent.objects.create(message=message, status=message.status)
        conversation.last_message_at = message.created_at
        conversation.save(update_fields=["last_message_at"])
        publish_message_event(message, "message.created")
        if not send_at:
            enqueue_on_commit(DELIVER_JOB, message.pk)
    return message


def _find_template(name: str) -> Template:
    template = Template.objects.filter(name=name).order_by("pk").first()
    if template is None:
        raise MessagingError(f"no template named {name!r}")
    return template


def cancel(*, message_id: int) -> Message:
    """Cancel a scheduled message; raises NotCancellable once it is being sent."""
    with transaction.atomic():
        moved = Message.objects.filter(pk=message_id, status=Status.SCHEDULED).update(
            status=Status.CANCELED, updated_at=timezone.now()
        )
        message = Message.objects.filter(pk=message_id).first()
        if message is None:
            raise NotCancellable(f"no message {message_id}")
        if not moved:
            raise NotCancellable(
                f"message {message_id} is {message.status}: only a scheduled message "
                "can be canceled"
            )
        MessageEvent.objects.create(message=message, status=Status.CANCELED)
        publish_message_event(message, "message.updated")
    return message


def release_due_scheduled(*, limit: int = 500) -> list[int]:
    """Move scheduled messages whose `send_at` has come to pending; their ids."""
    due = list(
        Message.objects.filter(status=Status.SCHEDULED, send_at__lte=timezone.now())
        .order_by("send_at")
        .values_list("pk", flat=True)[:limit]
    )
    released = []
    for message_id in due:
        if Message.objects.filter(pk=message_id, status=Status.SCHEDULED).update(
            status=Status.PENDING, next_attempt_at=timezone.now()
        ):
            released.append(message_id)
    return released


def list_due_pending(*, limit: int = 500) -> list[int]:
    return list(
        Message.objects.filter(
            status=Status.PENDING, next_attempt_at__lte=timezone.now()
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def status_callback_url(message: Message) -> str:
    """Where Twilio reports this message's status; empty when we have no public URL."""
    if not settings.PUBLIC_BASE_URL:
        return ""
    return f"{settings.PUBLIC_BASE_URL}{reverse('twilio-status')}?message={message.pk}"


def _outbound(message: Message, sender: Sender | None) -> OutboundMessage:
    template = message.template
    return OutboundMessage(
        id=message.pk,
        from_address=message.from_address,
        to_address=message.to_address,
        body=message.body,
        media_urls=tuple(item["url"] for item in message.media),
        messaging_service_sid=sender.messaging_service_sid if sender else "",
        content_sid=template.content_sid if template else "",
        content_variables=message.template_variables if template else {},
        quick_replies=tuple(template.buttons) if template else (),
        status_callback=status_callback_url(message),
    )


def backoff_seconds(attempt: int) -> int:
    """5 s, 10 s, 20 s, ... capped at 10 minutes."""
    return min(5 * 2 ** max(attempt - 1, 0), 600)


def deliver(*, message_id: int) -> str:
    """Hand a pending message to the backend, at most once at a time.

    Claims the message by moving it from pending to submitting; a message in any
    other status is left alone (returns "skipped"), so a job that runs twice never
    sends twice. A transient failure puts it back to pending with a backoff, up to
    SWITCHBOARD_SEND_MAX_ATTEMPTS; a permanent one marks it failed with its code.
    Returns the outcome: "sent", "retry", "failed" or "skipped".
    """
    # Resolved before the claim: a misconfigured backend leaves the message pending.
    backend = get_backend()
    claimed = Message.objects.filter(pk=message_id, status=Status.PENDING).update(
        status=Status.SUBMITTING,
        attempts=F("attempts") + 1,
        updated_at=timezone.now(),
    )
    if not claimed:
        return "skipped"
    message = Message.objects.select_related("template").get(pk=message_id)
    sender = Sender.objects.filter(address=message.from_address).first()
    if _window_closed_since_scheduled(message, sender):
        _fail(message_id, OUTSIDE_WINDOW_CODE, "outside the WhatsApp 24-hour window")
        return "failed"
    try:
        result = backend.send(_outbound(message, sender))
    except PermanentSendError as exc:
        _fail(message_id, exc.code, str(exc))
        return "failed"
    except Exception as exc:
        if not isinstance(exc, TransientSendError):
            logger.exception("unexpected error sending message %s", message_id)
        return _retry_later(message, exc)
    _record_sent(message_id, result.sid, result.status)
    return "sent"


def _window_closed_since_scheduled(message: Message, sender: Sender | None) -> bool:
    return (
        message.send_at is not None
        and message.template_id is None
        and sender is not None
        and sender.kind == ChannelKind.WHATSAPP
        and not within_whatsapp_window(
            sender=sender, customer_address=message.to_address
        )
    )


def _retry_later(message: Message, exc: Exception) -> str:
    code = getattr(exc, "code", "")
    if message.attempts >= settings.SWITCHBOARD_SEND_MAX_ATTEMPTS:
        _fail(message.pk, code, f"gave up after {message.attempts} attempts: {exc}")
        return "failed"
    delay = backoff_seconds(message.attempts)
    with transaction.atomic():
        Message.objects.filter(pk=message.pk, status=Status.SUBMITTING).update(
            status=Status.PENDING,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
            error_code=code,
            error_message=str(exc)[:500],
        )
        MessageEvent.objects.create(
            message_id=message.pk,
            status=Status.PENDING,
            error_code=code,
            detail=f"attempt {message.attempts} failed, retry in {delay}s: {exc}"[:500],
        )
        enqueue_on_commit(DELIVER_JOB, message.pk, countdown=delay)
    return "retry"


def fail_interrupted_sends(*, older_than: timedelta = INTERRUPTED_AFTER) -> int:
    """Mark failed the messages left submitting by a worker that died mid-send.

    Twilio may or may not have the message, and sending it again could send it
    twice, so it is not retried: it is marked failed, visibly, for a person to decide.
    """
    cutoff = timezone.now() - older_than
    stale = Message.objects.filter(status=Status.SUBMITTING, updated_at__lte=cutoff)
    failed = 0
    for message_id in list(stale.values_list("pk", flat=True)[:500]):
        with transaction.atomic():
            if not stale.filter(pk=message_id).update(
                status=Status.FAILED,
                error_message=INTERRUPTED_REASON,
                updated_at=timezone.now(),
            ):
                continue
            MessageEvent.objects.create(
                message_id=message_id, status=Status.FAILED, detail="interrupted send"
            )
            publish_message_event(Message.objects.get(pk=message_id), "message.updated")
            failed += 1
    return failed


def _record_sent(message_id: int, sid: str, status: str) -> None:
    with transaction.atomic():
        # A status callback may have beaten us here and already moved the status on.
        Message.objects.filter(pk=message_id, provider_sid__isnull=True).update(
            provider_sid=sid, error_code="", error_message=""
        )
        if status not in (Status.ACCEPTED, Status.QUEUED, Status.SENDING, Status.SENT):
            status = Status.QUEUED
        advance_status(
            message_id=message_id, status=status, detail=f"handed over as {sid}"
        )


def _fail(message_id: int, code: str, reason: str) -> None:
    logger.warning("message %s failed (%s): %s", message_id, code or "no code", reason)
    advance_status(
        message_id=message_id,
        status=Status.FAILED,
        error_code=code,
        error_message=reason,
        detail=reason,
    )
