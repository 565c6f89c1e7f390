"""The conversation's side of a handoff: it follows its routing task.

Routing knows nothing of conversations, so the conversation follows the task:
assigned → the agent phase; completed or canceled (by request, TTL, workflow
timeout) → closed, so the customer's next message starts the bot again. Beat's
sweep reconciles, so nothing is orphaned whichever way the task ended.
"""

import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from bots.models import Conversation, Phase
from routing.models import Task, TaskStatus

logger = logging.getLogger(__name__)

ENDED_TASK = (TaskStatus.COMPLETED, TaskStatus.CANCELED)


def conversation_for_task(task: Task) -> Conversation | None:
    """The conversation a task (or the task it was transferred from) serves."""
    ids = [task.pk] + ([task.transferred_from_id] if task.transferred_from_id else [])
    return (
        Conversation.objects.select_for_update()
        .filter(task_id__in=ids)
        .exclude(phase=Phase.CLOSED)
        .first()
    )


def task_assigned(*, task: Task) -> Conversation | None:
    """An agent took the task: the conversation is theirs (a transfer moves it on)."""
    with transaction.atomic():
        conversation = conversation_for_task(task)
        if conversation is None:
            return None
        conversation.phase, conversation.task = Phase.AGENT, task
        conversation.save(update_fields=["phase", "task"])
    return conversation


def close_conversation(*, conversation_id: int) -> bool:
    """Close an open conversation; False if it was closed already."""
    return bool(
        Conversation.objects.filter(pk=conversation_id)
        .exclude(phase=Phase.CLOSED)
        .update(phase=Phase.CLOSED, closed_at=timezone.now())
    )


def reconcile_handoffs() -> int:
    """Close conversations whose task ended without them (TTL, cancel, workflow
    timeout, completion elsewhere); returns how many were closed."""
    orphaned = Conversation.objects.filter(
        Q(phase=Phase.QUEUED) | Q(phase=Phase.AGENT), task__status__in=ENDED_TASK
    ).values_list("pk", flat=True)
    closed = 0
    for conversation_id in list(orphaned):
        if close_conversation(conversation_id=conversation_id):
            logger.info("closed conversation %s: its task ended", conversation_id)
            closed += 1
    return closed
