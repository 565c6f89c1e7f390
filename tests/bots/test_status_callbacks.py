"""Status callbacks move an outbound message's status forward only."""

import pytest

from bots.models import Message, MessageEvent, Status
from tests.conftest import twilio_payload

URL = "/webhooks/twilio/status"
SID = "SM0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d"
pytestmark = pytest.mark.django_db


@pytest.fixture
def sent_message(whatsapp_sender, customer_address):
    return Message.objects.create(
        direction="outbound",
        author="bot",
        from_address=whatsapp_sender.address,
        to_address=customer_address,
        body="Tu cita fue cancelada",
        provider_sid=SID,
        status=Status.QUEUED,
    )


def status_of(message: Message) -> str:
    message.refresh_from_db()
    return message.status


def test_callbacks_in_order_move_the_status_to_read(twilio_post, sent_message):
    for name in ("status_sent", "status_delivered", "status_read"):
        assert twilio_post(URL, twilio_payload(name)).status_code == 200

    sent_message.refresh_from_db()
    assert sent_message.status == Status.READ
    assert sent_message.sent_at and sent_message.delivered_at and sent_message.read_at
    assert list(sent_message.events.values_list("status", flat=True)) == [
        "sent",
        "delivered",
        "read",
    ]


def test_a_late_sent_after_delivered_changes_nothing(twilio_post, sent_message):
    twilio_post(URL, twilio_payload("status_delivered"))

    response = twilio_post(URL, twilio_payload("status_sent"))

    assert response.status_code == 200
    assert status_of(sent_message) == Status.DELIVERED
    assert MessageEvent.objects.filter(message=sent_message).count() == 1


def test_undelivered_is_final_and_keeps_the_error_code(twilio_post, sent_message):
    twilio_post(URL, twilio_payload("status_sent"))
    twilio_post(URL, twilio_payload("status_undelivered"))
    twilio_post(URL, twilio_payload("status_delivered"))
    twilio_post(URL, twilio_payload("status_read"))

    sent_message.refresh_from_db()
    assert sent_message.status == Status.UNDELIVERED
    assert sent_message.error_code == "63016"


def test_read_is_final(twilio_post, sent_message):
    twilio_post(URL, twilio_payload("status_read"))
    twilio_post(URL, twilio_payload("status_undelivered"))

    assert status_of(sent_message) == Status.READ


def test_an_unknown_sid_answers_200_and_is_logged(twilio_post, caplog, db):
    response = twilio_post(URL, twilio_payload("status_delivered", MessageSid="SMx"))

    assert response.status_code == 200
    assert "unknown message SMx" in caplog.text


def test_a_callback_that_beats_the_send_response_finds_the_message_by_our_id(
    twilio_post, sent_message
):
    Message.objects.filter(pk=sent_message.pk).update(
        provider_sid=None, status=Status.SUBMITTING
    )

    twilio_post(f"{URL}?message={sent_message.pk}", twilio_payload("status_sent"))

    sent_message.refresh_from_db()
    assert sent_message.provider_sid == SID
    assert sent_message.status == Status.SENT


def test_a_forged_status_callback_changes_nothing(client, sent_message):
    from tests.conftest import post_signed

    response = post_signed(
        client, URL, twilio_payload("status_read"), token="someone-elses-token"
    )

    assert response.status_code == 403
    assert status_of(sent_message) == Status.QUEUED


def test_a_status_callback_without_a_status_is_a_400(twilio_post, sent_message):
    payload = twilio_payload("status_read", MessageStatus="", SmsStatus="")

    assert twilio_post(URL, payload).status_code == 400
    assert status_of(sent_message) == Status.QUEUED
