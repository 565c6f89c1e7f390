"""Outbound: store first, send through the backend, retry only what is transient."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from bots import messaging
from bots.jobs import deliver_message, sweep_messages
from bots.messaging.api import deliver
from bots.models import Message, Status, Template
from tests.bots import twilio_fake
from tests.conftest import twilio_payload

pytestmark = pytest.mark.django_db
SCRIPTED = "tests.bots.twilio_fake.ScriptedTwilioBackend"


@pytest.fixture
def twilio_api():
    twilio_fake.script.clear()
    twilio_fake.requests_seen.clear()
    with override_settings(SWITCHBOARD_MESSAGING_BACKEND=SCRIPTED):
        yield twilio_fake
    twilio_fake.script.clear()


@pytest.fixture
def recent_inbound(twilio_post, whatsapp_sender, customer_address):
    """The customer wrote a minute ago: the WhatsApp window is open."""
    twilio_post("/webhooks/twilio/messaging", twilio_payload("whatsapp_text"))


@pytest.fixture
def reminder(db):
    return Template.objects.create(
        name="dentalink_reminder",
        language="es",
        body="Hola {{1}}, tu cita de {{2}} es el {{3}}.",
        buttons=[{"id": "confirm", "title": "Confirmar asistencia"}],
        content_sid="HX" + "a" * 32,
    )


def test_send_stores_the_message_then_the_job_hands_it_to_the_backend(
    sms_sender, outbox
):
    message = messaging.send(sender=sms_sender, to="+15558675310", body="Hola")

    assert message.status == Status.PENDING
    assert outbox == []

    assert deliver_message(message.pk) == "sent"

    message.refresh_from_db()
    assert message.status == Status.QUEUED
    assert message.provider_sid.startswith("SM")
    assert message.attempts == 1
    assert [(m.from_address, m.to_address, m.body) for m in outbox] == [
        ("+15005550006", "+15558675310", "Hola")
    ]
    assert message.conversation.contact.address == "+15558675310"


def test_running_the_job_twice_never_sends_twice(sms_sender, outbox):
    message = messaging.send(sender=sms_sender, to="+15558675310", body="Hola")

    assert deliver_message(message.pk) == "sent"
    assert deliver_message(message.pk) == "skipped"

    assert len(outbox) == 1


def test_the_twilio_backend_sends_from_to_body_media_and_status_callback(
    twilio_api, sms_sender, settings
):
    settings.PUBLIC_BASE_URL = "https://support.example.com"
    message = messaging.send(
        sender=sms_sender,
        to="+15558675310",
        body="Tu orden",
        media_urls=["https://example.com/orden.pdf"],
    )

    deliver(message_id=message.pk)

    [request] = twilio_api.requests_seen
    assert request["uri"].endswith("/Messages.json")
    assert request["data"]["From"] == "+15005550006"
    assert request["data"]["To"] == "+15558675310"
    assert request["data"]["Body"] == "Tu orden"
    assert request["data"]["MediaUrl"] == ["https://example.com/orden.pdf"]
    assert request["data"]["StatusCallback"] == (
        f"https://support.example.com/webhooks/twilio/status?message={message.pk}"
    )


def test_a_sender_with_a_messaging_service_sends_through_it(twilio_api, sms_sender):
    sms_sender.messaging_service_sid = "MG" + "1" * 32
    sms_sender.save()
    message = messaging.send(sender=sms_sender, to="+15558675310", body="Hola")

    deliver(message_id=message.pk)

    [request] = twilio_api.requests_seen
    assert request["data"]["MessagingServiceSid"] == "MG" + "1" * 32
    assert "From" not in request["data"]


@pytest.mark.parametrize(
    "failure", ["timeout", (500, 20500), (503, 20503), (429, 20429)]
)
def test_a_transient_failure_is_retried_with_backoff(twilio_api, sms_sender, failure):
    twilio_api.script.extend([failure])
    message = messaging.send(sender=sms_sender, to="+15558675310", body="Hola")

    assert deliver(message_id=message.pk) == "retry"

    message.refresh_from_db()
    assert message.status == Status.PENDING
    assert message.provider_sid is None
    assert message.next_attempt_at > timezone.now() + timedelta(seconds=3)

    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    assert sweep_messages()["sent"] == 1
    message.refresh_from_db()
    assert message.status == Status.QUEUED
    assert message.attempts == 2
    assert len(twilio_api.requests_seen) == 2


def test_backoff_doubles(sms_sender):
    from bots.messaging.api import backoff_seconds

    assert [backoff_seconds(n) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert backoff_seconds(30) == 600


@pytest.mark.parametrize("code", [21211, 63016, 21610])
def test_a_permanent_failure_is_not_retried_and_keeps_its_code(
    twilio_api, sms_sender, code
):
    twilio_api.script.extend([(400, code)])
    message = messaging.send(sender=sms_sender, to="+15558675310", body="Hola")

    assert deliver(message_id=message.pk) == "failed"
    sweep_messages()

    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert message.error_code == str(code)
    assert len(twilio_api.requests_seen) == 1


@override_settings(SWITCHBOARD_SEND_MAX_ATTEMPTS=3)
def test_transient_failures_give_up_after_the_last_attempt(twilio_api, sms_sender):
    twilio_api.script.extend([(503, 20503)] * 5)
    message = messaging.send(sender=sms_sender, to="+15558675310", body="Hola")

    outcomes = []
    for _ in range(4):
        outcomes.append(deliver(message_id=message.pk))
        Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())

    assert outcomes == ["retry", "retry", "failed", "skipped"]
    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert message.error_code == "20503"


def test_whatsapp_free_form_outside_the_24_hour_window_is_refused(
    whatsapp_sender, customer_address
):
    with pytest.raises(messaging.OutsideWhatsAppWindow, match="24 hours"):
        messaging.send(sender=whatsapp_sender, to=customer_address, body="Hola")

    assert Message.objects.count() == 0


def test_whatsapp_free_form_inside_the_window_is_sent(
    recent_inbound, whatsapp_sender, customer_address, outbox
):
    message = messaging.send(sender=whatsapp_sender, to=customer_address, body="Hola")

    assert deliver(message_id=message.pk) == "sent"


def test_the_window_closes_24_hours_after_the_last_inbound_message(
    recent_inbound, whatsapp_sender, customer_address
):
    Message.objects.update(created_at=timezone.now() - timedelta(hours=24, minutes=1))

    with pytest.raises(messaging.OutsideWhatsAppWindow):
        messaging.send(sender=whatsapp_sender, to=customer_address, body="Hola")


def test_a_template_may_be_sent_outside_the_window_with_its_variables(
    twilio_api, whatsapp_sender, customer_address, reminder
):
    message = messaging.send(
        sender=whatsapp_sender,
        to=customer_address,
        template="dentalink_reminder",
        variables={"1": "Lucía", "2": "odontología", "3": "martes"},
    )

    assert message.body == "Hola Lucía, tu cita de odontología es el martes."
    deliver(message_id=message.pk)
    [request] = twilio_api.requests_seen
    assert request["data"]["ContentSid"] == reminder.content_sid
    assert '"1": "Luc' in request["data"]["ContentVariables"]
    assert "Body" not in request["data"]


def test_a_missing_template_variable_is_a_clear_error(
    whatsapp_sender, customer_address, reminder
):
    with pytest.raises(messaging.TemplateVariableMissing, match=r"\{\{3\}\}"):
        messaging.send(
            sender=whatsapp_sender,
            to=customer_address,
            template=reminder,
            variables={"1": "Lucía", "2": "odontología"},
        )
    assert Message.objects.count() == 0


def test_a_quick_reply_to_a_template_comes_back_with_its_payload(
    twilio_post, whatsapp_sender, customer_address, reminder
):
    messaging.send(
        sender=whatsapp_sender,
        to=customer_address,
        template=reminder,
        variables={"1": "Lucía", "2": "odontología", "3": "martes"},
    )

    twilio_post("/webhooks/twilio/messaging", twilio_payload("whatsapp_quick_reply"))

    reply = Message.objects.get(direction="inbound")
    assert reply.raw["ButtonPayload"] == "confirm"
    assert reply.body == "Confirmar asistencia"


def test_a_message_to_another_channel_is_refused(whatsapp_sender):
    with pytest.raises(messaging.MessagingError, match="not a WhatsApp address"):
        messaging.send(sender=whatsapp_sender, to="+15558675310", body="Hola")


def test_an_unknown_sender_is_refused(db):
    with pytest.raises(messaging.MessagingError, match="no sender"):
        messaging.send(sender="+19999999999", to="+15558675310", body="Hola")


def test_an_empty_message_is_refused(sms_sender):
    with pytest.raises(messaging.MessagingError, match="needs a body"):
        messaging.send(sender=sms_sender, to="+15558675310", body="  ")


# Scheduled messages -------------------------------------------------------------


def test_a_scheduled_message_is_held_and_sent_by_the_sweep_when_due(sms_sender, outbox):
    send_at = timezone.now() + timedelta(hours=2)
    message = messaging.send(
        sender=sms_sender, to="+15558675310", body="Recordatorio", send_at=send_at
    )

    assert message.status == Status.SCHEDULED
    assert sweep_messages()["sent"] == 0
    assert deliver_message(message.pk) == "skipped"  # not due: the job cannot send it
    assert outbox == []

    Message.objects.filter(pk=message.pk).update(send_at=timezone.now())
    result = sweep_messages()

    assert result == {
        "handoffs_closed": 0,
        "processed": 0,
        "released": 1,
        "sent": 1,
        "interrupted": 0,
        "timeouts": 0,
    }
    message.refresh_from_db()
    assert message.status == Status.QUEUED
    assert [m.body for m in outbox] == ["Recordatorio"]


@pytest.mark.parametrize(
    "ahead", [timedelta(minutes=5), timedelta(days=36), timedelta(minutes=-1)]
)
def test_send_at_must_be_15_minutes_to_35_days_ahead(sms_sender, ahead):
    with pytest.raises(messaging.ScheduleOutOfRange, match="15 minutes and 35 days"):
        messaging.send(
            sender=sms_sender,
            to="+15558675310",
            body="x",
            send_at=timezone.now() + ahead,
        )


def test_a_scheduled_message_can_be_canceled_until_sent(sms_sender, outbox):
    message = messaging.send(
        sender=sms_sender,
        to="+15558675310",
        body="Recordatorio",
        send_at=timezone.now() + timedelta(days=1),
    )

    messaging.cancel(message_id=message.pk)
    Message.objects.filter(pk=message.pk).update(send_at=timezone.now())
    sweep_messages()

    message.refresh_from_db()
    assert message.status == Status.CANCELED
    assert outbox == []
    with pytest.raises(messaging.NotCancellable, match="canceled"):
        messaging.cancel(message_id=message.pk)


def test_a_sent_message_cannot_be_canceled(sms_sender, outbox):
    message = messaging.send(sender=sms_sender, to="+15558675310", body="Hola")
    deliver(message_id=message.pk)

    with pytest.raises(messaging.NotCancellable, match="only a scheduled message"):
        messaging.cancel(message_id=message.pk)


def test_a_scheduled_whatsapp_text_fails_if_the_window_closed_meanwhile(
    recent_inbound, whatsapp_sender, customer_address, outbox
):
    message = messaging.send(
        sender=whatsapp_sender,
        to=customer_address,
        body="Seguimos en contacto",
        send_at=timezone.now() + timedelta(days=2),
    )
    Message.objects.filter(direction="inbound").update(
        created_at=timezone.now() - timedelta(days=2)
    )
    Message.objects.filter(pk=message.pk).update(send_at=timezone.now())

    sweep_messages()

    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert message.error_code == "63016"
    assert outbox == []


# The command ----------------------------------------------------------------------


def test_sendmessage_sends_and_schedules(sms_sender, outbox, capsys):
    call_command(
        "sendmessage",
        "--from",
        "+15005550006",
        "--to",
        "+15558675310",
        "--body",
        "Hola",
    )
    later = (timezone.now() + timedelta(days=1)).isoformat()
    call_command(
        "sendmessage",
        "--from",
        "+15005550006",
        "--to",
        "+15558675310",
        "--body",
        "Luego",
        "--send-at",
        later,
    )

    out = capsys.readouterr().out
    assert "queued" in out and "scheduled for" in out
    assert list(Message.objects.values_list("status", flat=True)) == [
        "pending",
        "scheduled",
    ]


def test_sendmessage_fills_template_variables(
    whatsapp_sender, customer_address, reminder
):
    call_command(
        "sendmessage",
        "--from",
        whatsapp_sender.address,
        "--to",
        customer_address,
        "--template",
        "dentalink_reminder",
        "--var",
        "1=Lucía",
        "--var",
        "2=ortodoncia",
        "--var",
        "3=lunes",
    )

    assert (
        Message.objects.get().body == "Hola Lucía, tu cita de ortodoncia es el lunes."
    )


def test_sendmessage_reports_what_is_wrong(whatsapp_sender, customer_address):
    with pytest.raises(CommandError, match="24 hours"):
        call_command(
            "sendmessage",
            "--from",
            whatsapp_sender.address,
            "--to",
            customer_address,
            "--body",
            "Hola",
        )


def test_cancelmessage_cancels_a_scheduled_message(sms_sender, capsys):
    message = messaging.send(
        sender=sms_sender,
        to="+15558675310",
        body="Luego",
        send_at=timezone.now() + timedelta(days=1),
    )

    call_command("cancelmessage", str(message.pk))

    message.refresh_from_db()
    assert message.status == Status.CANCELED


# When things go wrong inside our own process -----------------------------------


@override_settings(
    SWITCHBOARD_MESSAGING_BACKEND="bots.messaging.backends.twilio.TwilioBackend",
    TWILIO_ACCOUNT_SID="",
)
def test_a_misconfigured_backend_leaves_the_message_pending(sms_sender):
    from django.core.exceptions import ImproperlyConfigured

    message = messaging.send(sender=sms_sender, to="+15558675310", body="Hola")

    with pytest.raises(ImproperlyConfigured, match="TWILIO_ACCOUNT_SID"):
        deliver(message_id=message.pk)

    message.refresh_from_db()
    assert message.status == Status.PENDING
    assert message.attempts == 0


class ExplodingBackend:
    def send(self, message):
        raise RuntimeError("bug before the request")


@override_settings(
    SWITCHBOARD_MESSAGING_BACKEND="tests.bots.test_outbound.ExplodingBackend"
)
def test_an_unexpected_error_is_logged_and_retried(sms_sender, caplog):
    message = messaging.send(sender=sms_sender, to="+15558675310", body="Hola")

    assert deliver(message_id=message.pk) == "retry"

    message.refresh_from_db()
    assert message.status == Status.PENDING
    assert "bug before the request" in message.error_message
    assert "unexpected error sending message" in caplog.text


def test_a_send_interrupted_mid_way_is_failed_by_the_sweep_not_resent(
    sms_sender, outbox
):
    message = messaging.send(sender=sms_sender, to="+15558675310", body="Hola")
    # A worker claimed it, then died before it could record the outcome.
    Message.objects.filter(pk=message.pk).update(status=Status.SUBMITTING)
    assert sweep_messages()["interrupted"] == 0  # not stale yet

    Message.objects.filter(pk=message.pk).update(
        updated_at=timezone.now() - timedelta(minutes=11)
    )
    assert sweep_messages()["interrupted"] == 1

    message.refresh_from_db()
    assert message.status == Status.FAILED
    assert "not retried" in message.error_message
    assert outbox == []
