import pytest
from django.test import override_settings

from bots.jobs import process_inbound, sweep_messages
from bots.models import Contact, Conversation, Message, Phase
from tests.conftest import twilio_payload

URL = "/webhooks/twilio/messaging"
pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "fixture", ["whatsapp_text", "whatsapp_media", "messenger_text", "sms_text"]
)
def test_a_signed_inbound_message_is_stored_and_answered_with_empty_twiml(
    twilio_post, fixture
):
    payload = twilio_payload(fixture)

    response = twilio_post(URL, payload)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert b"<Response></Response>" in response.content
    message = Message.objects.get(provider_sid=payload["MessageSid"])
    assert message.direction == "inbound"
    assert message.from_address == payload["From"]
    assert message.to_address == payload["To"]
    assert message.body == payload["Body"]
    assert message.raw == payload
    assert message.processed_at is None


def test_media_urls_and_types_are_kept_in_order(twilio_post):
    payload = twilio_payload("whatsapp_media")

    twilio_post(URL, payload)

    message = Message.objects.get(provider_sid=payload["MessageSid"])
    assert message.media == [
        {"url": payload["MediaUrl0"], "content_type": "image/jpeg"},
        {"url": payload["MediaUrl1"], "content_type": "application/pdf"},
    ]


def test_quick_reply_and_location_fields_stay_readable_for_flows(twilio_post):
    reply = twilio_payload("whatsapp_quick_reply")
    place = twilio_payload("whatsapp_location")

    twilio_post(URL, reply)
    twilio_post(URL, place)

    stored = Message.objects.get(provider_sid=reply["MessageSid"]).raw
    assert stored["ButtonPayload"] == "confirm"
    assert stored["ButtonText"] == "Confirmar asistencia"
    located = Message.objects.get(provider_sid=place["MessageSid"]).raw
    assert (located["Latitude"], located["Longitude"]) == ("6.2476376", "-75.5658153")


def test_the_same_message_sid_posted_twice_is_stored_once(twilio_post):
    payload = twilio_payload("whatsapp_text")

    first = twilio_post(URL, payload)
    second = twilio_post(URL, payload)

    assert first.status_code == second.status_code == 200
    assert Message.objects.filter(provider_sid=payload["MessageSid"]).count() == 1


def test_processing_opens_a_conversation_with_the_contact_and_is_idempotent(
    twilio_post, whatsapp_sender
):
    payload = twilio_payload("whatsapp_text")
    twilio_post(URL, payload)
    message = Message.objects.get(provider_sid=payload["MessageSid"])

    process_inbound(message.pk)
    process_inbound(message.pk)

    message.refresh_from_db()
    contact = Contact.objects.get(address=payload["From"])
    assert contact.profile_name == "Lucía Gómez"
    assert contact.kind == "whatsapp"
    conversation = Conversation.objects.get(contact=contact)
    assert conversation.sender == whatsapp_sender
    assert conversation.phase == Phase.BOT
    assert message.conversation == conversation
    assert message.processed_at is not None


def test_a_second_message_joins_the_open_conversation(twilio_post, whatsapp_sender):
    first = twilio_payload("whatsapp_text")
    second = twilio_payload("whatsapp_quick_reply")
    for payload in (first, second):
        twilio_post(URL, payload)
        process_inbound(Message.objects.get(provider_sid=payload["MessageSid"]).pk)

    assert Conversation.objects.count() == 1
    assert Conversation.objects.get().messages.count() == 2


def test_a_message_after_a_closed_conversation_opens_a_new_one(
    twilio_post, whatsapp_sender
):
    first = twilio_payload("whatsapp_text")
    twilio_post(URL, first)
    process_inbound(Message.objects.get(provider_sid=first["MessageSid"]).pk)
    Conversation.objects.update(phase=Phase.CLOSED)

    second = twilio_payload("whatsapp_quick_reply")
    twilio_post(URL, second)
    process_inbound(Message.objects.get(provider_sid=second["MessageSid"]).pk)

    assert Conversation.objects.count() == 2
    assert Conversation.objects.exclude(phase=Phase.CLOSED).count() == 1


def test_an_unknown_to_address_registers_the_sender(twilio_post):
    payload = twilio_payload("sms_text")
    twilio_post(URL, payload)

    process_inbound(Message.objects.get(provider_sid=payload["MessageSid"]).pk)

    conversation = Conversation.objects.get()
    assert conversation.sender.address == "+15005550006"
    assert conversation.sender.kind == "sms"


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"MessageSid": "", "SmsMessageSid": ""}, b"MessageSid"), ({"From": ""}, b"From")],
)
def test_a_signed_webhook_missing_a_required_field_is_a_400(
    twilio_post, change, reason, caplog
):
    payload = twilio_payload("whatsapp_text", **change)

    response = twilio_post(URL, payload)

    assert response.status_code == 400
    assert reason in response.content
    assert Message.objects.count() == 0
    assert "refused" in caplog.text


def test_a_body_that_is_not_a_form_is_a_400(client):
    response = client.post(URL, data=b"{not json", content_type="application/json")

    assert response.status_code == 400
    assert Message.objects.count() == 0


@override_settings(SWITCHBOARD_WEBHOOK_MAX_BYTES=2048)
def test_a_body_over_the_size_limit_is_a_413(twilio_post):
    payload = twilio_payload("whatsapp_text", Body="x" * 4096)

    response = twilio_post(URL, payload)

    assert response.status_code == 413
    assert Message.objects.count() == 0


def test_a_get_is_refused(client):
    assert client.get(URL).status_code == 405


def test_the_sweep_processes_messages_whose_job_never_ran(twilio_post, whatsapp_sender):
    payload = twilio_payload("whatsapp_text")
    twilio_post(URL, payload)
    Message.objects.update(created_at="2020-01-01T00:00:00Z")

    result = sweep_messages()

    assert result["processed"] == 1
    assert Message.objects.get().processed_at is not None
