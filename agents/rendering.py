"""The console's context and fragments, shared by the views and the consumer."""

import json
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.template.loader import render_to_string
from django.utils.functional import SimpleLazyObject

from agents import selectors
from bots.messaging.api import within_whatsapp_window
from bots.models import ChannelKind, Conversation, Message, Template
from routing.models import Worker

# Fragment name → the element id it replaces on the page.
FRAGMENT_IDS = {
    "status": "status",
    "offers": "offers",
    "conversations": "conversations",
    "conversation": "conversation",
}


def lazy(compute: Callable[[], Any]) -> Any:
    """A context value computed when a template first reads it, then kept: a page
    or fragment that does not show it costs no query."""
    return SimpleLazyObject(compute)


def console_context(*, user: Any, worker: Worker) -> dict[str, Any]:
    worker = Worker.objects.select_related("activity").get(pk=worker.pk)
    return {
        "worker": worker,
        "activities": lazy(selectors.list_activities),
        "offers": lazy(lambda: selectors.list_offers(worker=worker)),
        "conversations": lazy(
            lambda: selectors.list_conversations(user=user, worker=worker)
        ),
        "dispositions": lazy(selectors.list_dispositions),
        "targets": lazy(lambda: selectors.list_transfer_targets(worker=worker)),
    }


def conversation_context(*, user: Any, conversation_id: int) -> dict[str, Any]:
    conversation = (
        Conversation.objects.select_related("contact", "sender", "task")
        .filter(pk=conversation_id)
        .first()
    )
    if conversation is None:
        return {"conversation": None}
    if not selectors.can_see_conversation(user=user, conversation=conversation):
        raise PermissionDenied("You do not hold this conversation.")

    def window_open() -> bool:
        return conversation.sender.kind != ChannelKind.WHATSAPP or (
            within_whatsapp_window(
                sender=conversation.sender,
                customer_address=conversation.contact.address,
            )
        )

    is_open = lazy(window_open)
    return {
        "conversation": conversation,
        "holds": lazy(
            lambda: selectors.holds_conversation(user=user, conversation=conversation)
        ),
        "transcript": lazy(lambda: selectors.get_transcript(conversation=conversation)),
        "variables": lazy(
            lambda: selectors.get_flow_variables(conversation=conversation)
        ),
        "attributes": _readable(
            conversation.task.attributes if conversation.task else {}
        ),
        "window_open": is_open,
        "templates": lazy(lambda: [] if is_open else list(Template.objects.all())),
    }


def _readable(attributes: dict[str, Any]) -> dict[str, str]:
    """Task attributes for people: nested values as JSON, not Python's repr."""
    return {
        key: json.dumps(value, ensure_ascii=False)
        if isinstance(value, dict | list)
        else str(value)
        for key, value in attributes.items()
    }


def render_fragments(
    names: list[str], *, user: Any, worker: Worker, conversation_id: int | None = None
) -> list[dict[str, str]]:
    """The named fragments as [{"id", "html"}], for the console's socket."""
    context = console_context(user=user, worker=worker)
    if conversation_id is not None and "conversation" not in names:
        # The list only marks the open one: its id is enough.
        context["conversation"] = Conversation(pk=conversation_id)
    elif conversation_id is not None:
        try:
            context.update(
                conversation_context(user=user, conversation_id=conversation_id)
            )
        except PermissionDenied:
            context["conversation"] = None
    fragments = []
    for name in names:
        html = render_to_string(f"agents/console.html#{name}", context)
        fragments.append({"id": FRAGMENT_IDS[name], "html": html})
    return fragments


def render_messages(
    message_ids: list[int], *, conversation_id: int
) -> list[dict[str, str]]:
    """Messages of a conversation on their own (a status changed their ticks), as
    fragments that replace each message on the page by its id."""
    found = Message.objects.filter(
        pk__in=message_ids, conversation_id=conversation_id
    ).select_related("agent", "conversation__contact")
    return [
        {
            "id": f"message-{message.pk}",
            "html": render_to_string(
                "agents/console.html#message",
                {"message": message, "conversation": message.conversation},
            ),
        }
        for message in found.order_by("pk")
    ]
