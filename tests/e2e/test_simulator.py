"""The customer simulator against the real stack: a customer's phone in Chromium.

Each test has its own customer (see the `phone` fixture), so transcripts never mix;
what the system stored is read back with `manage.py shell`, as an operator would.
"""

import asyncio
import re
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Page, expect
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

SENDER = "whatsapp:+14155238886"
READ = re.compile(r"\bstatus-read\b")


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def type_and_send(phone: Page, text: str) -> None:
    phone.get_by_label("Message", exact=True).fill(text)
    phone.get_by_role("button", name="Send", exact=True).click()


def sendmessage(stack: Stack, customer: str, *args: str) -> int:
    """`manage.py sendmessage` from the demo WhatsApp sender; the new message's id."""
    output = stack.manage("sendmessage", "--from", SENDER, "--to", customer, *args)
    match = re.search(r"message (\d+) queued", output)
    assert match, f"sendmessage said {output!r}"
    return int(match.group(1))


def stored_inbound(stack: Stack, customer: str, body: str) -> dict:
    """The customer's message with `body`, once the worker has processed it."""
    return stack.wait_for(
        f"""
from bots.models import Message
m = Message.objects.filter(from_address={customer!r}, body={body!r}).first()
if m is not None and m.processed_at is not None:
    result = {{
        "direction": m.direction,
        "to": m.to_address,
        "in_conversation": m.conversation_id is not None,
        "contact": m.conversation.contact.address if m.conversation_id else None,
        "profile_name": m.raw.get("ProfileName"),
        "message_type": m.raw.get("MessageType"),
        "button_payload": m.raw.get("ButtonPayload"),
        "button_text": m.raw.get("ButtonText"),
    }}
""",
        f"processed inbound message {body!r}",
    )


def test_a_message_typed_on_the_phone_appears_and_is_processed_by_the_worker(
    stack: Stack, phone: Page, customer: str
) -> None:
    text = unique("Hola, quiero pedir una cita")

    type_and_send(phone, text)

    bubble = phone.locator("#transcript li.bubble.inbound", has_text=text)
    expect(bubble).to_be_visible()
    expect(bubble).to_have_attribute("data-status", "received")
    expect(phone.get_by_label("Message", exact=True)).to_have_value("")
    assert stored_inbound(stack, customer, text) == {
        "direction": "inbound",
        "to": SENDER,
        "in_conversation": True,
        "contact": customer,
        "profile_name": "Lucia",
        "message_type": "text",
        "button_payload": None,
        "button_text": None,
    }


def test_a_message_sent_by_the_system_appears_live_and_is_reported_read(
    stack: Stack, phone: Page, customer: str
) -> None:
    # WhatsApp lets a business write freely only within 24 hours of the customer.
    hello = unique("Hola")
    type_and_send(phone, hello)
    expect(phone.locator("#transcript li.inbound", has_text=hello)).to_be_visible()
    phone.evaluate("window.e2eSamePage = true")
    reply = unique("Gracias por escribirnos, ¿en qué te ayudamos?")

    message_id = sendmessage(stack, customer, "--body", reply)

    bubble = phone.locator(f"#message-{message_id}")
    expect(bubble).to_contain_text(reply)
    expect(bubble).to_have_class(re.compile(r"\boutbound\b"))
    expect(bubble.locator(".ticks")).to_have_class(READ)
    assert phone.evaluate("window.e2eSamePage") is True, "the page was reloaded"
    assert stack.query(
        f"""
from bots.models import Message
m = Message.objects.get(pk={message_id})
result = {{
    "status": m.status,
    "delivered": m.delivered_at is not None,
    "read": m.read_at is not None,
    "events": list(m.events.values_list("status", flat=True)),
}}
"""
    ) == {
        "status": "read",
        "delivered": True,
        "read": True,
        "events": ["pending", "sent", "delivered", "read"],
    }
    phone.locator("section.phone").screenshot(path=stack.tmp / "phone-round-trip.png")


def test_a_reminder_offers_quick_replies_and_a_tap_answers_with_the_payload(
    stack: Stack, phone: Page, customer: str
) -> None:
    message_id = sendmessage(
        stack,
        customer,
        "--template", "dentalink_reminder",
        "--var", "1=Lucia",
        "--var", "2=odontología",
        "--var", "3=martes 14",
        "--var", "4=10:30",
        "--var", "5=octubre",
        "--var", "6=Dra. Pérez",
        "--var", "7=Sede Norte",
    )  # fmt: skip

    reminder = phone.locator(f"#message-{message_id}")
    expect(reminder).to_contain_text("Lucia, somos KeyrusCare")
    expect(reminder).to_contain_text("tu cita de odontología")
    expect(reminder).to_contain_text("Lugar: Sede Norte")
    quick_replies = reminder.get_by_role("group", name="Quick replies")
    expect(quick_replies.get_by_role("button")).to_have_text(
        ["Confirmar asistencia", "Reprogramar"]
    )
    # Tap once the receipts are in, so the transcript is no longer changing.
    expect(reminder.locator(".ticks")).to_have_class(READ)

    quick_replies.get_by_role("button", name="Confirmar asistencia").click()

    answer = phone.locator("#transcript li.inbound", has_text="Confirmar asistencia")
    expect(answer).to_be_visible()
    assert stored_inbound(stack, customer, "Confirmar asistencia") == {
        "direction": "inbound",
        "to": SENDER,
        "in_conversation": True,
        "contact": customer,
        "profile_name": "Lucia",
        "message_type": "button",
        "button_payload": "confirm",
        "button_text": "Confirmar asistencia",
    }
    phone.locator("section.phone").screenshot(path=stack.tmp / "phone-quick-reply.png")


async def _open_socket(url: str, origin: str | None) -> tuple[str, object]:
    """("accepted", first frame) or ("refused", HTTP status of the handshake)."""
    try:
        async with connect(url, origin=origin, open_timeout=10) as socket:
            return "accepted", await asyncio.wait_for(socket.recv(), timeout=10)
    except InvalidStatus as exc:
        return "refused", exc.response.status_code


def open_socket(url: str, origin: str | None) -> tuple[str, object]:
    # Playwright's sync API owns this thread's event loop: run asyncio elsewhere.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _open_socket(url, origin)).result(timeout=30)


def test_the_phone_socket_refuses_a_foreign_origin_and_accepts_its_own(
    stack: Stack,
) -> None:
    url = f"{stack.ws_url}/ws/simulator/?sender=1&customer=whatsapp:%2B15005550006"

    assert open_socket(url, origin="http://evil.example") == ("refused", 403)
    assert open_socket(url, origin=None) == ("refused", 403)
    outcome, frame = open_socket(url, origin=stack.url)
    assert outcome == "accepted"
    assert 'id="transcript"' in frame
