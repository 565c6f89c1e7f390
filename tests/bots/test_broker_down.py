"""With the broker down a webhook still answers 200 and its message is kept."""

import socket

import kombu.pools
import pytest
from celery import current_app

from bots.jobs import sweep_messages
from bots.models import Message
from tests.conftest import twilio_payload

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def broker_down():
    """Point Celery at a Redis port where nothing listens, then restore it."""
    saved = current_app.conf.broker_url
    _use_broker(f"redis://127.0.0.1:{closed_port()}/0")
    yield
    _use_broker(saved)


def _use_broker(url: str) -> None:
    # Celery and kombu cache connection and producer pools: drop them.
    kombu.pools.reset()
    current_app._pool = None
    current_app.amqp._producer_pool = None
    current_app.conf.broker_url = url


def test_the_webhook_answers_200_and_keeps_the_message(
    twilio_post,
    broker_down,
    whatsapp_sender,
    django_capture_on_commit_callbacks,
    caplog,
):
    payload = twilio_payload("whatsapp_text")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = twilio_post("/webhooks/twilio/messaging", payload)

    assert response.status_code == 200
    assert len(callbacks) == 1  # the processing job was attempted after commit
    assert "broker unreachable" in caplog.text
    message = Message.objects.get(provider_sid=payload["MessageSid"])
    assert message.processed_at is None


def test_beat_processes_the_kept_message_once_the_broker_is_back(
    twilio_post, broker_down, whatsapp_sender, django_capture_on_commit_callbacks
):
    payload = twilio_payload("whatsapp_text")
    with django_capture_on_commit_callbacks(execute=True):
        twilio_post("/webhooks/twilio/messaging", payload)
    Message.objects.update(created_at="2020-01-01T00:00:00Z")

    assert sweep_messages()["processed"] == 1

    message = Message.objects.get(provider_sid=payload["MessageSid"])
    assert message.processed_at is not None
    assert message.conversation.sender == whatsapp_sender


def test_with_the_broker_up_the_processing_job_is_queued(
    twilio_post, django_capture_on_commit_callbacks, caplog
):
    with django_capture_on_commit_callbacks(execute=True):
        twilio_post("/webhooks/twilio/messaging", twilio_payload("whatsapp_text"))

    assert "broker unreachable" not in caplog.text


def test_an_outbound_message_survives_the_broker_being_down(
    broker_down, sms_sender, outbox, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    from bots import messaging

    with django_capture_on_commit_callbacks(execute=True):
        message = messaging.send(sender=sms_sender, to="+15558675310", body="Hola")
    assert outbox == []

    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    sweep_messages()

    assert [m.body for m in outbox] == ["Hola"]
