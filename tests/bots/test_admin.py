import pytest
from django.core.management import call_command

from bots import messaging
from bots.models import Contact, Conversation, Message, Sender, Template
from tests.conftest import twilio_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def supervisor_client(client, settings):
    settings.DEBUG = True
    call_command("loaddemo")
    client.login(username="sam", password="demo")
    return client


def test_every_messaging_model_is_readable_in_admin(supervisor_client, twilio_post):
    twilio_post("/webhooks/twilio/messaging", twilio_payload("sms_text"))
    from bots.jobs import process_inbound

    process_inbound(Message.objects.get().pk)
    messaging.send(sender="+15005550006", to="+15558675310", body="Hola")

    for model in (Sender, Contact, Conversation, Message, Template):
        name = model._meta.model_name
        listing = supervisor_client.get(f"/admin/bots/{name}/")
        assert listing.status_code == 200, name
        first = model.objects.first()
        detail = supervisor_client.get(f"/admin/bots/{name}/{first.pk}/change/")
        assert detail.status_code == 200, name


def test_a_message_shows_its_webhook_fields_and_cannot_be_edited(
    supervisor_client, twilio_post
):
    twilio_post("/webhooks/twilio/messaging", twilio_payload("sms_text"))
    message = Message.objects.get()

    page = supervisor_client.get(f"/admin/bots/message/{message.pk}/change/")

    html = page.content.decode()
    assert "FromCity" in html and "SAN FRANCISCO" in html
    assert 'name="_save"' not in html
