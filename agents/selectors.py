"""What a console shows, read in a few queries."""

from typing import Any

from django.db.models import Count, OuterRef, Q, Subquery

from agents.models import CannedResponse, Disposition, ReadMarker, WrapUp
from bots.models import Conversation, Direction, Message, Phase
from routing import clock
from routing.models import (
    Activity,
    Reservation,
    ReservationStatus,
    Task,
    TaskQueue,
    Worker,
)

SUPERVISORS = "Supervisors"
HELD = (ReservationStatus.ACCEPTED, ReservationStatus.WRAPPING)


def is_supervisor(*, user: Any) -> bool:
    return bool(
        user.is_authenticated
        and (user.is_superuser or user.groups.filter(name=SUPERVISORS).exists())
    )


def get_worker(*, user: Any) -> Worker | None:
    if not user.is_authenticated:
        return None
    return Worker.objects.select_related("activity").filter(user=user).first()


def holds_conversation(*, user: Any, conversation: Conversation) -> bool:
    """The user's worker holds the conversation's current task."""
    worker = get_worker(user=user)
    if worker is None or conversation.task_id is None:
        return False
    return Reservation.objects.filter(
        task_id=conversation.task_id, worker=worker, status__in=HELD
    ).exists()


def _task_chain(task: Task | None) -> list[int]:
    """The conversation's task and every task it was transferred from."""
    chain: list[int] = []
    while task is not None and task.pk not in chain:
        chain.append(task.pk)
        task = task.transferred_from
    return chain


def can_see_conversation(*, user: Any, conversation: Conversation) -> bool:
    """Supervisors see all; agents what they hold or held (took, then completed
    or transferred)."""
    if is_supervisor(user=user):
        return True
    worker = get_worker(user=user)
    if worker is None:
        return False
    took = Reservation.objects.filter(
        worker=worker,
        task_id__in=_task_chain(conversation.task),
        status__in=(*HELD, ReservationStatus.COMPLETED),
    ).exists()
    return took or WrapUp.objects.filter(conversation=conversation, agent=user).exists()


def list_offers(*, worker: Worker) -> list[dict[str, Any]]:
    """The worker's pending offers with who, where from, how long, the last words."""
    reservations = list(
        Reservation.objects.filter(worker=worker, status=ReservationStatus.PENDING)
        .select_related("task__queue", "task__channel")
        .order_by("created_at")
    )
    # A transferred task serves the conversation of the task it came from.
    serving = {r.task_id: r.task.transferred_from_id or r.task_id for r in reservations}
    by_task = {
        c.task_id: c
        for c in Conversation.objects.filter(
            task_id__in=serving.values()
        ).select_related("contact", "sender")
    }
    conversations = {task: by_task.get(origin) for task, origin in serving.items()}
    last = _last_inbound([c for c in conversations.values() if c is not None])
    now = clock.now()
    offers = []
    for reservation in reservations:
        conversation = conversations.get(reservation.task_id)
        offers.append(
            {
                "reservation": reservation,
                "task": reservation.task,
                "conversation": conversation,
                "waiting_seconds": int(
                    (now - reservation.task.created_at).total_seconds()
                ),
                "expires_in": max(
                    int((reservation.expires_at - now).total_seconds()), 0
                ),
                "last_message": last.get(conversation.pk) if conversation else None,
            }
        )
    return offers


def _last_inbound(conversations: list[Conversation]) -> dict[int, str]:
    rows = Message.objects.filter(
        conversation__in=conversations, direction=Direction.INBOUND
    ).order_by("conversation_id", "-pk")
    last: dict[int, str] = {}
    for conversation_id, body in rows.values_list("conversation_id", "body"):
        last.setdefault(conversation_id, body)
    return last


def list_conversations(*, user: Any, worker: Worker) -> list[Conversation]:
    """The agent's active conversations with `unread` counts."""
    marker = ReadMarker.objects.filter(user=user, conversation=OuterRef("pk")).values(
        "last_message_id"
    )[:1]
    return list(
        Conversation.objects.filter(
            phase=Phase.AGENT,
            task__reservations__worker=worker,
            task__reservations__status__in=HELD,
        )
        .select_related("contact", "sender", "task")
        .annotate(seen=Subquery(marker))
        .annotate(
            unread=Count(
                "messages",
                filter=Q(messages__direction=Direction.INBOUND)
                & (Q(seen__isnull=True) | Q(messages__pk__gt=Subquery(marker))),
            )
        )
        .order_by("-last_message_at")
    )


def get_transcript(*, conversation: Conversation, limit: int = 200) -> list[Message]:
    """The contact's messages with this sender, bot part and earlier ones included."""
    newest = (
        Message.objects.filter(
            conversation__contact=conversation.contact_id,
            conversation__sender=conversation.sender_id,
        )
        .select_related("agent", "template")
        .order_by("-created_at", "-pk")[:limit]
    )
    return list(reversed(newest))


def get_flow_variables(*, conversation: Conversation) -> dict[str, Any]:
    execution = conversation.executions.order_by("-started_at").first()
    if execution is None:
        return {}
    frames = execution.state.get("frames") or [{}]
    return frames[0].get("context", {}).get("flow", {}).get("variables", {})


def list_activities() -> list[Activity]:
    return list(Activity.objects.order_by("name"))


def list_transfer_targets(*, worker: Worker) -> dict[str, list[str]]:
    return {
        "queues": list(
            TaskQueue.objects.order_by("name").values_list("name", flat=True)
        ),
        "workers": list(
            Worker.objects.exclude(pk=worker.pk)
            .order_by("name")
            .values_list("name", flat=True)
        ),
    }


def search_canned(*, query: str = "", limit: int = 20) -> list[CannedResponse]:
    found = CannedResponse.objects.all()
    if query:
        found = found.filter(
            Q(title__icontains=query)
            | Q(body__icontains=query)
            | Q(shortcut__icontains=query)
        )
    return list(found[:limit])


def list_dispositions() -> list[Disposition]:
    return list(Disposition.objects.filter(active=True))
