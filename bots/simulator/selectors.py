"""Reads for the customer simulator: one thread between a sender and a customer."""

from django.db.models import Q

from bots.models import Message, Sender, kind_of_address

DEFAULT_CUSTOMER = {
    "whatsapp": "whatsapp:+15005550006",
    "messenger": "messenger:4455667788990011",
    "sms": "+15005550006",
}


def get_sender(*, sender_id: int) -> Sender | None:
    return Sender.objects.filter(pk=sender_id).first()


def list_senders() -> list[Sender]:
    return list(Sender.objects.order_by("kind", "address"))


def list_thread_messages(
    *, sender: Sender, customer: str, limit: int = 100
) -> list[Message]:
    """The last `limit` messages between `sender` and `customer`, oldest first."""
    thread = Q(from_address=customer, to_address=sender.address) | Q(
        from_address=sender.address, to_address=customer
    )
    newest = (
        Message.objects.filter(thread)
        .select_related("template")
        .order_by("-created_at", "-id")[:limit]
    )
    return list(reversed(newest))


def customer_matches_sender(*, sender: Sender, customer: str) -> bool:
    return bool(customer) and kind_of_address(customer) == sender.kind
