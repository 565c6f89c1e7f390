"""What an agent does from the console, each a checked call into routing and bots.

Every function takes the acting user and refuses (PermissionDenied) what the user
may not do: agents act only on their own offers and on conversations they hold.
"""

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction

from agents.models import Disposition, ReadMarker, WrapUp
from agents.selectors import get_worker, holds_conversation
from bots import messaging
from bots.models import Conversation, Message
from bots.services import handoff
from routing import services as routing
from routing.models import Reservation, Task


class ConsoleError(ValueError):
    """An action the console cannot carry out; the text says why, for the agent."""


def _own_reservation(user: Any, reservation_id: int) -> Reservation:
    worker = get_worker(user=user)
    reservation = Reservation.objects.filter(pk=reservation_id).first()
    if reservation is None or worker is None or reservation.worker_id != worker.pk:
        raise PermissionDenied("That offer is not yours.")
    return reservation


def accept_offer(*, user: Any, reservation_id: int) -> Conversation | None:
    """Take an offered conversation. Raises ConsoleError when it is gone."""
    reservation = _own_reservation(user, reservation_id)
    with transaction.atomic():
        try:
            routing.accept_reservation(reservation_id=reservation.pk)
        except routing.InvalidTransition as exc:
            raise ConsoleError("This offer has expired or was taken.") from exc
        task = Task.objects.get(pk=reservation.task_id)
        conversation = handoff.task_assigned(task=task)
    if conversation is not None:  # it opens on the agent's screen
        mark_read(user=user, conversation_id=conversation.pk)
    return conversation


def reject_offer(*, user: Any, reservation_id: int) -> None:
    reservation = _own_reservation(user, reservation_id)
    try:
        routing.reject_reservation(reservation_id=reservation.pk)
    except routing.InvalidTransition as exc:
        raise ConsoleError("This offer has expired or was taken.") from exc


def _held(user: Any, conversation_id: int) -> Conversation:
    conversation = (
        Conversation.objects.select_related("contact", "sender", "task")
        .filter(pk=conversation_id)
        .first()
    )
    if conversation is None or not holds_conversation(
        user=user, conversation=conversation
    ):
        raise PermissionDenied("You do not hold this conversation.")
    return conversation


def send_reply(
    *,
    user: Any,
    conversation_id: int,
    body: str = "",
    template: str = "",
    variables: dict[str, str] | None = None,
) -> Message:
    """Send the agent's reply (or a WhatsApp template) to the customer."""
    conversation = _held(user, conversation_id)
    if not body.strip() and not template:
        raise ConsoleError("Write a message first.")
    try:
        message = messaging.send(
            sender=conversation.sender,
            to=conversation.contact.address,
            body=body.strip(),
            template=template or None,
            variables=variables or {},
            agent=user,
        )
    except messaging.MessagingError as exc:
        raise ConsoleError(str(exc)) from exc
    mark_read(user=user, conversation_id=conversation_id)
    return message


def mark_read(*, user: Any, conversation_id: int) -> None:
    """Everything in the conversation so far is read. A conversation without
    messages (or none at all: an id from a socket) has nothing to mark."""
    last = (
        Message.objects.filter(conversation_id=conversation_id)
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    if last is None:
        return
    ReadMarker.objects.update_or_create(
        user=user, conversation_id=conversation_id, defaults={"last_message_id": last}
    )


def transfer(
    *,
    user: Any,
    conversation_id: int,
    queue: str = "",
    worker: str = "",
    note: str = "",
) -> Task:
    """Hand the conversation to a queue or an agent; it stays with this agent until
    the other accepts, and comes back if nobody does."""
    conversation = _held(user, conversation_id)
    if conversation.task_id is None:
        raise ConsoleError("This conversation has no task to transfer.")
    try:
        return routing.transfer_task(
            task_id=conversation.task_id,
            queue=queue or None,
            worker=worker or None,
            note=note,
            timeout=settings.SWITCHBOARD_TRANSFER_TIMEOUT,
        )
    except routing.RoutingError as exc:
        raise ConsoleError(str(exc)) from exc


def complete(
    *, user: Any, conversation_id: int, disposition: str = "", notes: str = ""
) -> WrapUp:
    """Complete the task, record the wrap-up and close the conversation."""
    conversation = _held(user, conversation_id)
    code = Disposition.objects.filter(code=disposition, active=True).first()
    if disposition and code is None:
        raise ConsoleError(f"Unknown wrap-up code {disposition!r}.")
    with transaction.atomic():
        if conversation.task_id is not None:
            routing.complete_task(task_id=conversation.task_id)
        wrapup = WrapUp.objects.create(
            conversation=conversation,
            task_id=conversation.task_id,
            agent=user,
            disposition=code,
            notes=notes.strip(),
        )
        handoff.close_conversation(conversation_id=conversation.pk)
    return wrapup


def set_status(*, user: Any, activity: str) -> None:
    worker = get_worker(user=user)
    if worker is None:
        raise PermissionDenied("You are not an agent.")
    try:
        routing.set_worker_activity(worker_id=worker.pk, activity=activity)
    except routing.WorkerError as exc:
        raise ConsoleError(str(exc)) from exc
