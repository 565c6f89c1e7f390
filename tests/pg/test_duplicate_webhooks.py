"""Twilio retrying a webhook, or a proxy replaying it, while the first is in flight.

Six processes post the same signed webhook at once. Each gets its 200 (Twilio
would otherwise retry yet again) and the message is stored once: the unique
MessageSid decides, and the losers read the winner's row.
"""

from urllib.parse import urlencode

import pytest
from django.test import Client

from bots.models import Message
from tests.conftest import sign, twilio_payload
from tests.pg.racing import race

URL = "/webhooks/twilio/messaging"
SIGNED_URL = f"http://testserver{URL}"
RACERS = 6

pytestmark = pytest.mark.django_db(transaction=True)


def post_webhook(params: dict[str, str], signature: str) -> tuple[int, bytes]:
    response = Client().post(
        URL,
        urlencode(params),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
    )
    return response.status_code, response.content


@pytest.mark.parametrize(
    "fixture", ["whatsapp_text", "whatsapp_media", "messenger_text", "sms_text"]
)
def test_six_racing_duplicates_are_stored_once(fixture):
    params = twilio_payload(fixture)
    signature = sign(SIGNED_URL, params)

    answers = race(post_webhook, [(params, signature)] * RACERS, gate=Message)

    assert [status for status, _ in answers] == [200] * RACERS
    assert all(b"<Response></Response>" in body for _, body in answers)
    stored = Message.objects.get(provider_sid=params["MessageSid"])
    assert Message.objects.count() == 1
    assert stored.raw == params
    assert stored.processed_at is None


def test_duplicates_racing_in_rounds_without_a_gate_are_each_stored_once():
    """Free-running races, no lock held: whatever interleaving the OS picks."""
    sids = [f"SM{round_:032x}" for round_ in range(1, 4)]
    for sid in sids:
        params = twilio_payload("whatsapp_text", MessageSid=sid, SmsMessageSid=sid)
        signature = sign(SIGNED_URL, params)

        answers = race(post_webhook, [(params, signature)] * RACERS)

        assert [status for status, _ in answers] == [200] * RACERS
        assert Message.objects.filter(provider_sid=sid).count() == 1
    assert Message.objects.count() == len(sids)
