"""X-Twilio-Signature: valid, forged, missing, and behind a TLS-terminating proxy."""

from urllib.parse import urlencode

import pytest
from django.test import override_settings

from bots.models import Message
from tests.conftest import post_signed, sign, twilio_payload

URL = "/webhooks/twilio/messaging"
pytestmark = pytest.mark.django_db


def test_a_forged_signature_is_refused_and_nothing_is_stored(client):
    payload = twilio_payload("whatsapp_text")

    response = post_signed(client, URL, payload, token="not-our-auth-token")

    assert response.status_code == 403
    assert Message.objects.count() == 0


def test_a_missing_signature_is_refused(client):
    response = client.post(
        URL,
        "From=whatsapp%3A%2B1&MessageSid=SM1",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 403
    assert Message.objects.count() == 0


def test_a_signature_over_other_fields_is_refused(client):
    payload = twilio_payload("whatsapp_text")
    signed_for = dict(payload, Body="something else")

    response = client.post(
        URL,
        urlencode(payload),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=sign(f"http://testserver{URL}", signed_for),
    )

    assert response.status_code == 403
    assert Message.objects.count() == 0


@override_settings(PUBLIC_BASE_URL="https://support.example.com")
def test_behind_a_proxy_the_signature_is_checked_against_the_public_url(client):
    payload = twilio_payload("whatsapp_text")

    # Twilio signed https://support.example.com/...; the proxy forwarded plain HTTP.
    response = post_signed(
        client, URL, payload, signed_url=f"https://support.example.com{URL}"
    )

    assert response.status_code == 200
    assert Message.objects.filter(provider_sid=payload["MessageSid"]).exists()


@override_settings(PUBLIC_BASE_URL="https://support.example.com")
def test_behind_a_proxy_a_signature_over_the_internal_url_is_refused(client):
    payload = twilio_payload("whatsapp_text")

    response = post_signed(client, URL, payload)  # signed over http://testserver

    assert response.status_code == 403
    assert Message.objects.count() == 0


@override_settings(PUBLIC_BASE_URL="https://support.example.com")
def test_the_query_string_is_part_of_the_signed_url(client):
    payload = twilio_payload("whatsapp_text")
    path = f"{URL}?tenant=clinic"

    good = post_signed(
        client, path, payload, signed_url=f"https://support.example.com{path}"
    )
    payload["MessageSid"] = payload["SmsMessageSid"] = "SM" + "1" * 32
    bad = post_signed(
        client, path, payload, signed_url=f"https://support.example.com{URL}"
    )

    assert good.status_code == 200
    assert bad.status_code == 403
    assert Message.objects.count() == 1


@override_settings(TWILIO_AUTH_TOKEN="")
def test_without_an_auth_token_every_webhook_is_refused(client):
    payload = twilio_payload("whatsapp_text")

    response = post_signed(client, URL, payload, token="anything")

    assert response.status_code == 403
    assert Message.objects.count() == 0
