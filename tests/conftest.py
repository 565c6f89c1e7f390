"""Personas and helpers shared by the whole suite.

Twilio is the one thing we cannot reach: its webhooks are replayed from recorded
payloads under tests/fixtures/twilio/, signed with twilio's own RequestValidator,
and outbound messages land in the locmem backend's outbox.
"""

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.test import Client
from twilio.request_validator import RequestValidator

FIXTURES = Path(__file__).parent / "fixtures" / "twilio"
HERE = Path(__file__).parent
# Each needs a pytest session of its own (a PostgreSQL cluster; Playwright's loop).
OWN_SESSION = (HERE / "pg", HERE / "e2e")


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """Leave tests/pg and tests/e2e out unless they are asked for by path."""
    for folder in OWN_SESSION:
        if collection_path == folder:
            asked = [Path(arg.split("::")[0]).resolve() for arg in config.args]
            if not any(folder == a or folder in a.parents for a in asked):
                return True
    return None


def twilio_payload(name: str, **changes: str) -> dict[str, str]:
    """A recorded Twilio webhook payload, with some fields changed."""
    payload = json.loads((FIXTURES / f"{name}.json").read_text())
    payload.update(changes)
    return payload


def sign(url: str, params: dict[str, str], token: str | None = None) -> str:
    return RequestValidator(token or settings.TWILIO_AUTH_TOKEN).compute_signature(
        url, params
    )


def post_signed(
    client: Client,
    path: str,
    params: dict[str, str],
    *,
    signed_url: str | None = None,
    token: str | None = None,
    **extra,
):
    """POST `params` to `path` as Twilio would, signed over `signed_url`.

    By default the signature covers the URL the test client requests
    (http://testserver + path), as Twilio's would when nothing is in between.
    """
    url = signed_url or f"http://testserver{path}"
    return client.post(
        path,
        urlencode(params),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=sign(url, params, token),
        **extra,
    )


@pytest.fixture
def twilio_post(client: Client) -> Callable:
    """`twilio_post(path, params, **kw)`: a signed webhook request."""

    def post(path: str, params: dict[str, str], **kwargs):
        return post_signed(client, path, params, **kwargs)

    return post


@pytest.fixture
def outbox():
    """What the locmem backend sent during the test."""
    from bots import messaging

    messaging.outbox.clear()
    yield messaging.outbox
    messaging.outbox.clear()


@pytest.fixture
def whatsapp_sender(db):
    from bots.models import ChannelKind, Sender

    return Sender.objects.create(
        address="whatsapp:+14155238886",
        kind=ChannelKind.WHATSAPP,
        friendly_name="Clinic",
    )


@pytest.fixture
def messenger_sender(db):
    from bots.models import ChannelKind, Sender

    return Sender.objects.create(
        address="messenger:108131232204637", kind=ChannelKind.MESSENGER
    )


@pytest.fixture
def sms_sender(db):
    from bots.models import ChannelKind, Sender

    return Sender.objects.create(address="+15005550006", kind=ChannelKind.SMS)


@pytest.fixture
def customer_address() -> str:
    """The WhatsApp customer of the recorded payloads."""
    return "whatsapp:+573245634749"


@pytest.fixture
def agent(django_user_model):
    return django_user_model.objects.create_user(
        "ana", password="demo", first_name="Ana"
    )


@pytest.fixture
def supervisor(django_user_model):
    return django_user_model.objects.create_user(
        "sam", password="demo", first_name="Sam", is_staff=True
    )
