"""The console's context and fragments, shared by the views and the consumer."""

import json
from typing import Any

from django.core.exceptions import PermissionDenied
from django.template.loader import render_to_string

from agents import selectors
from bots.messaging.api import within_whatsapp_window
from bots.models import ChannelKind, Conversation, Template
from routing.models import Worker

# Fragment name → the element id it replaces on the page.
FRAGMENT_IDS = {
    "status": "status",
    "offers": "offers",
    "conversations": "conversations",
    "conversation": "conversation",
}


def console_context(*, user: Any, worker: Worker) -> dict[str, Any]:
    worker = Worker.objects.select_related("activity").get(pk=worker.pk)
    return {
        "worker": worker,
        "activities": selectors.list_activities(),
        "offers": selectors.list_offers(worker=worker),
        "conversations": selectors.list_conversations(user=user, worker=worker),
        "dispositions": selectors.list_dispositions(),
        "targets": selectors.list_transfer_targets(worker=worker),
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
    window_open = (
        conversation.sender.kind != ChannelKind.WHATSAPP
        or within_whatsapp_window(
            sender=conversation.sender, customer_address=conversation.contact.address
        )
    )
    return {
        "conversation": conversation,
        "holds": selectors.holds_conversation(user=user, conversation=conversation),
        "transcript": selectors.get_transcript(conversation=conversation),
        "variables": selectors.get_flow_variables(conversation=conversation),
        "attributes": _readable(
            conversation.task.attributes if conversation.task else {}
        ),
        "window_open": window_open,
        "templates": [] if window_open else list(Template.objects.all()),
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
    if conversation_id is not None:
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
