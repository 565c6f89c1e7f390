"""Workers racing each other over the same contact and the same outbound message.

Celery may run two jobs for one customer at the same moment (two messages sent
back to back, or a job and beat's sweep), and a deliver job can run twice (a
retried job, the sweeper). Each case runs in separate OS processes on PostgreSQL.
"""

import pytest

from bots import messaging
from bots.messaging.api import deliver
from bots.models import (
    ChannelKind,
    Contact,
    Conversation,
    Message,
    MessageEvent,
    Phase,
    Sender,
    Status,
)
from bots.services.inbound import process_inbound, store_inbound
from tests.conftest import twilio_payload
from tests.pg.racing import ROW_LOCKS, race

CUSTOMER = "whatsapp:+573245634749"
DELIVERERS = 4

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def whatsapp_sender():
    return Sender.objects.create(
        address="whatsapp:+14155238886", kind=ChannelKind.WHATSAPP
    )


@pytest.fixture
def sms_sender():
    return Sender.objects.create(address="+15005550006", kind=ChannelKind.SMS)


@pytest.fixture
def two_unprocessed_messages(whatsapp_sender) -> list[int]:
    """Two different messages from the customer, stored and not processed yet."""
    ids = []
    for fixture in ("whatsapp_text", "whatsapp_quick_reply"):
        message, created = store_inbound(fields=twilio_payload(fixture))
        assert created and message.from_address == CUSTOMER
        ids.append(message.pk)
    return ids


def process(message_id: int) -> int | None:
    processed = process_inbound(message_id=message_id)
    return processed.pk if processed else None


def deliver_and_count(message_id: int) -> tuple[str, int]:
    """The outcome, and how many messages this process handed to the backend."""
    messaging.outbox.clear()
    outcome = deliver(message_id=message_id)
    return outcome, len(messaging.outbox)


def assert_both_in_one_open_conversation(message_ids, sender) -> Conversation:
    contact = Contact.objects.get(address=CUSTOMER)
    conversation = Conversation.objects.exclude(phase=Phase.CLOSED).get()
    assert (conversation.contact, conversation.sender) == (contact, sender)
    for message in Message.objects.filter(pk__in=message_ids):
        assert message.conversation == conversation
        assert message.processed_at is not None
    assert conversation.last_message_at is not None
    return conversation


def test_two_first_messages_from_a_new_contact_share_one_contact_and_conversation(
    two_unprocessed_messages, whatsapp_sender
):
    assert not Contact.objects.exists()

    # Both workers miss the contact and insert it at the same moment.
    processed = race(process, [(pk,) for pk in two_unprocessed_messages], gate=Contact)

    assert processed == two_unprocessed_messages
    assert Contact.objects.count() == 1
    assert Contact.objects.get().profile_name == "Lucía Gómez"
    assert Conversation.objects.count() == 1
    conversation = assert_both_in_one_open_conversation(
        two_unprocessed_messages, whatsapp_sender
    )
    assert conversation.phase == Phase.BOT


def test_two_messages_from_a_known_contact_with_no_open_conversation_open_only_one(
    two_unprocessed_messages, whatsapp_sender
):
    # Same profile name: no update of the contact row to queue the workers up.
    contact = Contact.objects.create(
        address=CUSTOMER, kind=ChannelKind.WHATSAPP, profile_name="Lucía Gómez"
    )
    closed = Conversation.objects.create(
        contact=contact, sender=whatsapp_sender, phase=Phase.CLOSED
    )

    # Both workers find no open conversation and insert one at the same moment:
    # the partial unique index turns one away, and it retries into the other's.
    processed = race(
        process, [(pk,) for pk in two_unprocessed_messages], gate=Conversation
    )

    assert processed == two_unprocessed_messages
    assert Contact.objects.count() == 1
    assert Conversation.objects.count() == 2
    conversation = assert_both_in_one_open_conversation(
        two_unprocessed_messages, whatsapp_sender
    )
    assert conversation != closed
    assert Conversation.objects.get(pk=closed.pk).phase == Phase.CLOSED


def test_a_message_processed_by_two_workers_at_once_is_processed_once(
    two_unprocessed_messages, whatsapp_sender
):
    first = two_unprocessed_messages[0]

    # Both lock the message row in the same instant; the second finds it done.
    processed = race(process, [(first,), (first,)], gate=Message, gate_mode=ROW_LOCKS)

    assert sorted(processed, key=str) == sorted([first, None], key=str)
    assert Conversation.objects.count() == 1
    assert Message.objects.get(pk=first).conversation is not None
    assert Message.objects.get(pk=two_unprocessed_messages[1]).processed_at is None


def test_a_pending_message_delivered_by_four_workers_at_once_is_sent_once(
    sms_sender,
):
    message = messaging.send(sender=sms_sender, to="+15558675310", body="hi")
    assert message.status == Status.PENDING

    # All four claim the message in the same instant.
    outcomes = race(deliver_and_count, [(message.pk,)] * DELIVERERS, gate=Message)

    assert sorted(outcome for outcome, _ in outcomes) == ["sent"] + ["skipped"] * (
        DELIVERERS - 1
    )
    assert sum(handed for _, handed in outcomes) == 1
    assert all(handed == (outcome == "sent") for outcome, handed in outcomes)
    message.refresh_from_db()
    assert message.provider_sid and message.provider_sid.startswith("SM")
    assert message.attempts == 1
    assert message.status == Status.QUEUED
    assert list(
        MessageEvent.objects.filter(message=message).values_list("status", flat=True)
    ) == [Status.PENDING, Status.QUEUED]
