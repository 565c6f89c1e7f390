"""Studio's REST trigger: POST /api/flows/<name>/executions."""

import base64
import json
from pathlib import Path

import pytest

from bots.demo import load_demo_routing
from bots.flows.importing import import_flow
from bots.models import Execution, Message

pytestmark = pytest.mark.django_db
URL = "/api/flows/reminder/executions"
TOKEN = "s3cret-token"

REMINDER_FLOW = {
    "description": "REST-triggered reminder",
    "initial_state": "Trigger",
    "flags": {"allow_concurrent_calls": True},
    "states": [
        {
            "name": "Trigger",
            "type": "trigger",
            "transitions": [
                {"event": "incomingMessage"},
                {"event": "incomingRequest", "next": "remind"},
            ],
            "properties": {"offset": {"x": 0, "y": 0}},
        },
        {
            "name": "remind",
            "type": "send-message",
            "transitions": [{"event": "sent"}, {"event": "failed"}],
            "properties": {
                "body": "Hola {{flow.data.name}}, tu cita es el {{flow.data.date}}.",
                "from": "{{flow.channel.address}}",
                "to": "{{contact.channel.address}}",
            },
        },
    ],
}


@pytest.fixture
def reminder_flow(sms_sender, settings):
    settings.SWITCHBOARD_API_TOKENS = [TOKEN]
    load_demo_routing()
    return import_flow(definition=REMINDER_FLOW, name="reminder")


def post(client, data, **headers):
    return client.post(URL, data, **headers)


def bearer(token=TOKEN):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_a_rest_trigger_starts_the_flow_with_its_parameters(client, reminder_flow):
    response = post(
        client,
        {
            "To": "+15558675310",
            "From": "+15005550006",
            "Parameters": json.dumps({"name": "Lucía", "date": "3 de diciembre"}),
        },
        **bearer(),
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["sid"].startswith("FN")
    assert body["status"] == "ended"
    message = Message.objects.get(direction="outbound")
    assert message.body == "Hola Lucía, tu cita es el 3 de diciembre."
    assert message.to_address == "+15558675310"
    execution = Execution.objects.get()
    assert execution.state["frames"][0]["context"]["flow"]["data"]["name"] == "Lucía"


def test_a_json_body_works_too(client, reminder_flow):
    response = client.post(
        URL,
        {"To": "+15558675310", "From": "+15005550006", "Parameters": {"name": "Ana"}},
        content_type="application/json",
        **bearer(),
    )

    assert response.status_code == 201
    assert "Hola Ana" in Message.objects.get(direction="outbound").body


def test_twilio_credentials_authenticate_as_basic_auth(client, reminder_flow, settings):
    credentials = f"{settings.TWILIO_ACCOUNT_SID}:{settings.TWILIO_AUTH_TOKEN}"
    basic = base64.b64encode(credentials.encode()).decode()

    response = post(
        client,
        {"To": "+15558675310", "From": "+15005550006"},
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )

    assert response.status_code == 201


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("wrong"), {"HTTP_AUTHORIZATION": "Basic bm9wZTpub3Bl"}],
)
def test_without_valid_credentials_nothing_starts(client, reminder_flow, headers):
    response = post(client, {"To": "+15558675310", "From": "+15005550006"}, **headers)

    assert response.status_code == 401
    assert not Execution.objects.exists()


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        ({"From": "+15005550006"}, 400, "To and From"),
        ({"To": "+1555", "From": "+15005550006", "Parameters": "[1]"}, 400, "object"),
        ({"To": "+1555", "From": "+15005550006", "Parameters": "{nope"}, 400, "Bad"),
        ({"To": "+1555", "From": "+19999999999"}, 404, "not one of our senders"),
    ],
)
def test_bad_requests_say_what_is_wrong(client, reminder_flow, data, status, words):
    response = post(client, data, **bearer())

    assert response.status_code == status
    assert words in response.json()["message"]
    assert not Execution.objects.exists()


def test_an_unknown_flow_is_a_404(client, reminder_flow):
    response = client.post(
        "/api/flows/nope/executions",
        {"To": "+15558675310", "From": "+15005550006"},
        **bearer(),
    )

    assert response.status_code == 404


def test_a_contact_with_a_running_execution_is_a_409(client, reminder_flow):
    waiting = json.loads(json.dumps(REMINDER_FLOW))
    waiting["states"][1]["type"] = "send-and-wait-for-reply"
    waiting["states"][1]["transitions"] = [
        {"event": "incomingMessage"},
        {"event": "timeout"},
        {"event": "deliveryFailure"},
    ]
    import_flow(definition=waiting, name="reminder")
    data = {"To": "+15558675310", "From": "+15005550006"}

    first = post(client, data, **bearer())
    second = post(client, data, **bearer())

    assert first.status_code == 201 and first.json()["status"] == "waiting"
    assert second.status_code == 409
    assert Execution.objects.count() == 1


def test_the_seed_flow_can_be_started_by_rest_as_well(client, settings, sms_sender):
    settings.SWITCHBOARD_API_TOKENS = [TOKEN]
    load_demo_routing()
    flow = Path(__file__).resolve().parents[2] / "bots/demo_flows/appointments.json"
    import_flow(definition=json.loads(flow.read_text()), name="appointments")

    response = client.post(
        "/api/flows/appointments/executions",
        {"To": "+15558675310", "From": "+15005550006"},
        **bearer(),
    )

    assert response.status_code == 201
    assert response.json()["status"] == "waiting"
    assert "Escribe 1 para cancelar" in Message.objects.get(direction="outbound").body


def test_an_execution_older_than_30_days_expires_instead_of_timing_out(
    client, reminder_flow
):
    from datetime import timedelta

    from django.utils import timezone

    from bots.flows.services import fire_timeout

    waiting = json.loads(json.dumps(REMINDER_FLOW))
    waiting["states"][1]["type"] = "send-and-wait-for-reply"
    waiting["states"][1]["properties"]["timeout"] = "5000000"
    waiting["states"][1]["transitions"] = [
        {"event": "incomingMessage"},
        {"event": "timeout", "next": "remind"},
        {"event": "deliveryFailure"},
    ]
    import_flow(definition=waiting, name="reminder")
    post(client, {"To": "+15558675310", "From": "+15005550006"}, **bearer())
    execution = Execution.objects.get()
    assert execution.wait_deadline <= execution.started_at + timedelta(days=30)
    Execution.objects.update(
        started_at=timezone.now() - timedelta(days=31),
        wait_deadline=timezone.now() - timedelta(days=1),
    )

    fire_timeout(execution_id=execution.pk)

    execution.refresh_from_db()
    assert execution.status == "ended"
    assert execution.end_reason == "expired after 30 days"
    assert Message.objects.filter(direction="outbound").count() == 1
