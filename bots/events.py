"""Which live groups hear about a message, and the one call that tells them."""

import hashlib

from bots.models import Message
from routing.realtime import group_name, publish_on_commit


def thread_group(our_address: str, customer_address: str) -> str:
    """The group for everything between one of our addresses and one customer.

    Stable across conversations, which is what a customer's phone (the simulator) shows.
    """
    digest = hashlib.sha256(f"{our_address}|{customer_address}".encode()).hexdigest()
    return group_name("thread", digest[:32])


def conversation_group(conversation_id: int) -> str:
    return group_name("conversation", conversation_id)


def publish_message_event(message: Message, event_type: str) -> None:
    """Publish `message.*` after commit to the message's thread and conversation."""
    groups = [thread_group(message.our_address, message.customer_address)]
    if message.conversation_id:
        groups.append(conversation_group(message.conversation_id))
    publish_on_commit(
        groups,
        event_type,
        message_id=message.pk,
        conversation_id=message.conversation_id,
    )
