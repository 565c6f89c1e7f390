"""Contacts, senders and conversations: find or open them, safely under concurrency."""

import logging

from django.db import IntegrityError, transaction

from bots.models import Contact, Conversation, Phase, Sender, kind_of_address

logger = logging.getLogger(__name__)


def get_or_create_contact(*, address: str, profile_name: str = "") -> Contact:
    """The contact for `address`, created on first sight; a new profile name is kept."""
    contact, created = Contact.objects.get_or_create(
        address=address,
        defaults={"kind": kind_of_address(address), "profile_name": profile_name},
    )
    if not created and profile_name and contact.profile_name != profile_name:
        Contact.objects.filter(pk=contact.pk).update(profile_name=profile_name)
        contact.profile_name = profile_name
    return contact


def get_or_create_sender(*, address: str) -> Sender:
    """The sender for one of our addresses.

    Twilio only posts to us for addresses someone pointed here, so an address we do
    not know yet is registered rather than its customers' messages dropped.
    """
    sender, created = Sender.objects.get_or_create(
        address=address, defaults={"kind": kind_of_address(address)}
    )
    if created:
        logger.warning("registered new sender %s from an inbound message", address)
    return sender


def get_or_open_conversation(*, contact: Contact, sender: Sender) -> Conversation:
    """The open conversation between `contact` and `sender`, locked; a new one if none.

    Must run inside a transaction. Two processes opening the same conversation at
    once meet on the partial unique constraint; the loser reads the winner's row.
    """
    for _ in range(3):
        conversation = (
            Conversation.objects.select_for_update()
            .filter(contact=contact, sender=sender)
            .exclude(phase=Phase.CLOSED)
            .first()
        )
        if conversation is not None:
            return conversation
        try:
            with transaction.atomic():
                return Conversation.objects.create(
                    contact=contact, sender=sender, phase=Phase.BOT
                )
        except IntegrityError:
            continue
    raise RuntimeError(f"could not open a conversation for {contact} and {sender}")
