"""Which live groups hear about a message, and the one call that tells them."""

import hashlib

from bots.models import Message
from routing.events import SUPERVISORS_GROUP, worker_group
from routing.models import Reservation, ReservationStatus
from routing.realtime import group_name, publish_on_commit


def thread_group(our_address: str, customer_address: str) -> str:
    """The group for everything between one of our addresses and one customer.

    Stable across conversations, which is what a customer's phone (the simulator) shows.
    """
    digest = hashlib.sha256(f"{our_address}|{customer_address}".encode()).hexdigest()
    return group_name("thread", digest[:32])


def conversation_group(conversation_id: int) -> str:
    return group_name("conversation", conversation_id)


def holders(conversation_id: int) -> list[int]:
    """Workers holding the conversation's current task (an accepted reservation)."""
    return list(
        Reservation.objects.filter(
            task__conversations__pk=conversation_id,
            status__in=(ReservationStatus.ACCEPTED, ReservationStatus.WRAPPING),
        ).values_list("worker_id", flat=True)
    )


def publish_message_event(message: Message, event_type: str) -> None:
    """Publish `message.*` after commit to the message's thread and conversation,
    to supervisors, and to the console of the agent holding the conversation."""
    groups = [thread_group(message.our_address, message.customer_address)]
    if message.conversation_id:
        groups.append(conversation_group(message.conversation_id))
        groups.append(SUPERVISORS_GROUP)
        groups += [worker_group(worker) for worker in holders(message.conversation_id)]
    publish_on_commit(
        groups,
        event_type,
        message_id=message.pk,
        conversation_id=message.conversation_id,
    )
