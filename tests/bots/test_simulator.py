"""The simulator's views and consumer, in process; the browser round trip is in e2e."""

from urllib.parse import quote

import pytest
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from bots.events import thread_group
from bots.models import Message
from bots.simulator.views import inbound_fields
from config.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_phone_page_lists_senders_and_opens_a_thread(client, whatsapp_sender):
    response = client.get(
        "/simulator/",
        {"sender": whatsapp_sender.pk, "customer": "whatsapp:+15005550006"},
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "whatsapp:+14155238886" in html
    assert 'aria-label="Message"' in html
    assert "ws-connect" in html


def test_a_customer_address_of_another_channel_is_explained(client, whatsapp_sender):
    response = client.get(
        "/simulator/", {"sender": whatsapp_sender.pk, "customer": "+15558675310"}
    )

    assert "is not a WhatsApp address" in response.content.decode()
    assert "ws-connect" not in response.content.decode()


@override_settings(SWITCHBOARD_SIMULATOR=False)
def test_the_simulator_is_off_unless_enabled(client, whatsapp_sender):
    assert client.get("/simulator/").status_code == 404
    assert (
        client.post("/simulator/send", {"sender": whatsapp_sender.pk}).status_code
        == 404
    )


def test_sending_goes_through_the_signed_webhook(client, whatsapp_sender):
    response = client.post(
        "/simulator/send",
        {
            "sender": whatsapp_sender.pk,
            "customer": "whatsapp:+15005550006",
            "name": "Lucía",
            "body": "Hola",
        },
    )

    assert response.status_code == 200
    message = Message.objects.get()
    assert message.body == "Hola"
    assert message.raw["ProfileName"] == "Lucía"
    assert message.raw["WaId"] == "15005550006"
    assert message.provider_sid.startswith("SM")
    assert f'id="message-{message.pk}"' in response.content.decode()


def test_a_quick_reply_carries_its_payload(client, whatsapp_sender):
    client.post(
        "/simulator/send",
        {
            "sender": whatsapp_sender.pk,
            "customer": "whatsapp:+15005550006",
            "button_payload": "confirm",
            "button_text": "Confirmar asistencia",
        },
    )

    message = Message.objects.get()
    assert message.body == "Confirmar asistencia"
    assert message.raw["ButtonPayload"] == "confirm"
    assert message.raw["MessageType"] == "button"


def test_inbound_fields_follow_the_channel(messenger_sender, sms_sender):
    messenger = inbound_fields(
        sender=messenger_sender, customer="messenger:1", name="x", body="b", button=None
    )
    sms = inbound_fields(
        sender=sms_sender, customer="+1555", name="x", body="b", button=None
    )

    assert "WaId" not in messenger and "ProfileName" not in messenger
    assert sms["To"] == "+15005550006" and sms["From"] == "+1555"


@pytest.mark.asyncio
async def test_the_phone_socket_sends_the_transcript_then_each_change(whatsapp_sender):
    from channels.layers import get_channel_layer

    customer = "whatsapp:+15005550006"
    communicator = WebsocketCommunicator(
        application,
        f"/ws/simulator/?sender={whatsapp_sender.pk}&customer={quote(customer)}",
        headers=[(b"origin", b"http://localhost"), (b"host", b"localhost")],
    )
    connected, _ = await communicator.connect()
    assert connected
    snapshot = await communicator.receive_from(timeout=5)
    assert 'id="transcript"' in snapshot

    await get_channel_layer().group_send(
        thread_group(whatsapp_sender.address, customer),
        {"type": "message.updated", "message_id": 1, "conversation_id": None},
    )
    update = await communicator.receive_from(timeout=5)
    assert 'id="transcript"' in update
    await communicator.disconnect()


@pytest.mark.asyncio
async def test_the_phone_socket_refuses_a_foreign_origin(whatsapp_sender):
    communicator = WebsocketCommunicator(
        application,
        f"/ws/simulator/?sender={whatsapp_sender.pk}&customer=whatsapp:+1",
        headers=[(b"origin", b"http://evil.example"), (b"host", b"localhost")],
    )

    connected, _ = await communicator.connect()

    assert not connected
