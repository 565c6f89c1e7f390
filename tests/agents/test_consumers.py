"""The console's socket with WebsocketCommunicator against the real ASGI application:
who may connect, the snapshot, sequence numbers and catching up, what each console
hears; and presence, which moves a silent agent Offline."""

import json
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from agents.models import Presence
from agents.presence import sweep_absent
from config.asgi import application
from routing import services as routing
from routing.events import worker_group
from routing.models import Reservation, ReservationStatus
from routing.realtime import current_sequence
from tests.agents.conftest import HOSTILE, make_available, worker_of

LOCAL = b"http://localhost"
transactional = pytest.mark.django_db(transaction=True)


def _session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def open_socket(
    user=None, *, path: str = "/ws/console/", origin: bytes = LOCAL
) -> tuple[WebsocketCommunicator, bool, Any]:
    headers = [(b"origin", origin), (b"host", b"localhost")]
    if user is not None:
        cookie = await database_sync_to_async(_session_cookie)(user)
        headers.append((b"cookie", cookie))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect()
    return communicator, connected, code


async def console_of(user) -> tuple[WebsocketCommunicator, dict]:
    """A connected console and its first frame, the snapshot."""
    communicator, connected, code = await open_socket(user)
    assert connected, code
    return communicator, await communicator.receive_json_from(timeout=2)


def html_of(frame: dict, fragment: str | None = None) -> str:
    return "".join(
        item["html"]
        for item in frame["fragments"]
        if fragment is None or item["id"] == fragment
    )


def ids_of(frame: dict) -> list[str]:
    return [item["id"] for item in frame["fragments"]]


async def frame_with(communicator: WebsocketCommunicator, text: str) -> list[dict]:
    """Frames received until one contains `text`; all of them, that one last."""
    frames = []
    while True:
        frame = await communicator.receive_json_from(timeout=2)
        frames.append(frame)
        if frame["type"] == "fragments" and text in html_of(frame):
            return frames


def sequence_of(user) -> int:
    return current_sequence(worker_group(worker_of(user).pk))


def pending_offer_of(user) -> Reservation:
    return Reservation.objects.get(
        worker=worker_of(user), status=ReservationStatus.PENDING
    )


# Who may connect


@transactional
@pytest.mark.asyncio
async def test_an_anonymous_socket_is_refused(demo):
    communicator, connected, code = await open_socket(None)

    assert not connected
    assert code == 4401
    await communicator.disconnect()


@transactional
@pytest.mark.asyncio
async def test_a_socket_from_a_foreign_origin_is_refused(ana):
    communicator, connected, _ = await open_socket(
        ana, origin=b"http://evil.example.com"
    )

    assert not connected
    await communicator.disconnect()


@transactional
@pytest.mark.asyncio
async def test_a_user_without_a_worker_is_refused(sam):
    communicator, connected, code = await open_socket(sam)

    assert not connected
    assert code == 4403
    await communicator.disconnect()


# Snapshot and sequence


@transactional
@pytest.mark.asyncio
async def test_connecting_sends_a_snapshot_at_the_current_sequence(ana):
    await database_sync_to_async(make_available)(ana)
    expected = await database_sync_to_async(sequence_of)(ana)

    communicator, frame = await console_of(ana)

    assert frame["type"] == "fragments"
    assert frame["snapshot"] is True
    assert frame["seq"] == expected > 0
    assert ids_of(frame) == ["status", "offers", "conversations"]
    assert '<option value="Available" selected>' in html_of(frame, "status")
    assert "No offers right now." in html_of(frame, "offers")
    await communicator.disconnect()


@transactional
@pytest.mark.asyncio
async def test_an_offer_reaches_the_agent_with_the_next_sequence_number(ana, customer):
    await database_sync_to_async(make_available)(ana)
    communicator, snapshot = await console_of(ana)

    await database_sync_to_async(customer.ask_for_agent)()

    offer = await database_sync_to_async(pending_offer_of)(ana)
    frames = await frame_with(communicator, f"/console/offers/{offer.pk}/accept")
    assert frames[0]["seq"] == snapshot["seq"] + 1
    assert [f["seq"] for f in frames] == list(
        range(snapshot["seq"] + 1, snapshot["seq"] + 1 + len(frames))
    )
    last = frames[-1]
    assert last["snapshot"] is False
    assert ">Accept</button>" in html_of(last, "offers")
    assert "Lucía Gómez" in html_of(last, "offers")
    assert last["seq"] == await database_sync_to_async(sequence_of)(ana)
    await communicator.disconnect()


def _time_out(reservation: Reservation) -> None:
    Reservation.objects.filter(pk=reservation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    routing.sweep()


@transactional
@pytest.mark.asyncio
async def test_an_offer_that_times_out_leaves_the_console(ana, customer):
    await database_sync_to_async(make_available)(ana)
    communicator, _ = await console_of(ana)
    await database_sync_to_async(customer.ask_for_agent)()
    offer = await database_sync_to_async(pending_offer_of)(ana)
    await frame_with(communicator, f"offer-{offer.pk}")

    await database_sync_to_async(_time_out)(offer)

    frames = await frame_with(communicator, "No offers right now.")
    assert f"offer-{offer.pk}" not in html_of(frames[-1], "offers")
    # The timeout moved her to the workspace's timeout activity: her Status shows it.
    await frame_with(communicator, '<option value="Offline" selected>')
    await communicator.disconnect()


@transactional
@pytest.mark.asyncio
async def test_another_agent_hears_nothing_of_the_offer(ana, ben, customer):
    await database_sync_to_async(make_available)(ana)
    await database_sync_to_async(make_available)(ben)
    anas, _ = await console_of(ana)
    bens, _ = await console_of(ben)

    await database_sync_to_async(customer.ask_for_agent)()

    offer = await database_sync_to_async(pending_offer_of)(ana)
    await frame_with(anas, f"/console/offers/{offer.pk}/accept")
    assert await bens.receive_nothing(timeout=0.3)
    await anas.disconnect()
    await bens.disconnect()


@transactional
@pytest.mark.asyncio
async def test_a_ping_behind_the_sequence_gets_a_snapshot(ana):
    await database_sync_to_async(make_available)(ana)
    communicator, snapshot = await console_of(ana)
    current = snapshot["seq"]

    await communicator.send_json_to({"type": "ping", "seq": current - 1})
    behind = await communicator.receive_json_from(timeout=2)
    await communicator.send_json_to({"type": "ping", "seq": current})
    level = await communicator.receive_json_from(timeout=2)

    assert behind["type"] == "fragments"
    assert behind["snapshot"] is True
    assert behind["seq"] == current
    assert ids_of(behind) == ["status", "offers", "conversations"]
    assert level == {"type": "pong", "seq": current}
    await communicator.disconnect()


@transactional
@pytest.mark.asyncio
async def test_a_resync_gets_a_snapshot(ana, customer):
    await database_sync_to_async(make_available)(ana)
    communicator, _ = await console_of(ana)
    await database_sync_to_async(customer.ask_for_agent)()
    offer = await database_sync_to_async(pending_offer_of)(ana)
    await frame_with(communicator, f"offer-{offer.pk}")

    await communicator.send_json_to({"type": "resync"})
    frame = await communicator.receive_json_from(timeout=2)

    assert frame["snapshot"] is True
    assert frame["seq"] == await database_sync_to_async(sequence_of)(ana)
    assert f"offer-{offer.pk}" in html_of(frame, "offers")
    await communicator.disconnect()


@transactional
@pytest.mark.asyncio
async def test_an_offer_made_while_disconnected_is_in_the_next_snapshot(ana, customer):
    await database_sync_to_async(make_available)(ana)
    communicator, before = await console_of(ana)
    await communicator.disconnect()

    await database_sync_to_async(customer.ask_for_agent)()

    again, snapshot = await console_of(ana)
    offer = await database_sync_to_async(pending_offer_of)(ana)
    assert snapshot["seq"] > before["seq"]
    assert f"/console/offers/{offer.pk}/accept" in html_of(snapshot, "offers")
    await again.disconnect()


@transactional
@pytest.mark.asyncio
async def test_customer_text_in_a_frame_is_escaped(ana, new_customer):
    await database_sync_to_async(make_available)(ana)
    communicator, _ = await console_of(ana)
    hostile = new_customer(HOSTILE)

    await database_sync_to_async(hostile.say)(HOSTILE)
    await database_sync_to_async(hostile.say)("2")
    await database_sync_to_async(hostile.say)(HOSTILE)

    offer = await database_sync_to_async(pending_offer_of)(ana)
    frames = await frame_with(communicator, f"offer-{offer.pk}")
    await communicator.send_json_to({"type": "resync"})
    frames.append(await communicator.receive_json_from(timeout=2))
    for frame in frames:
        assert "<script>alert(1)" not in html_of(frame)
        assert "<b>x</b>" not in html_of(frame)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_of(frames[-1], "offers")
    await communicator.disconnect()


# The open conversation


@transactional
@pytest.mark.asyncio
async def test_opening_a_held_conversation_sends_its_transcript(ana, with_ana):
    communicator, _ = await console_of(ana)

    await communicator.send_json_to({"type": "open", "conversation": with_ana.pk})
    frame = await communicator.receive_json_from(timeout=2)

    assert frame["snapshot"] is True
    assert ids_of(frame) == ["status", "offers", "conversations", "conversation"]
    conversation = html_of(frame, "conversation")
    assert f'data-conversation="{with_ana.pk}"' in conversation
    assert 'id="transcript"' in conversation
    assert "hola" in conversation
    assert "Lucía Gómez" in html_of(frame, "conversations")
    await communicator.disconnect()


@transactional
@pytest.mark.asyncio
async def test_opening_a_conversation_she_does_not_hold_shows_nothing_of_it(
    ana, with_ana, new_customer
):
    stranger = new_customer("Pedro Páramo")
    await database_sync_to_async(stranger.say)("Mi número secreto es 4321")
    other = await database_sync_to_async(lambda: stranger.conversation)()
    communicator, _ = await console_of(ana)

    await communicator.send_json_to({"type": "open", "conversation": other.pk})
    frame = await communicator.receive_json_from(timeout=2)

    text = json.dumps(frame, ensure_ascii=False)
    assert "4321" not in text
    assert "Pedro Páramo" not in text
    assert f'data-conversation="{other.pk}"' not in text
    assert "Pick a conversation" in html_of(frame, "conversation")
    await communicator.disconnect()


@transactional
@pytest.mark.asyncio
async def test_a_customer_message_reaches_the_open_conversation(
    ana, with_ana, customer
):
    communicator, _ = await console_of(ana)
    await communicator.send_json_to({"type": "open", "conversation": with_ana.pk})
    opened = await communicator.receive_json_from(timeout=2)

    await database_sync_to_async(customer.say)("¿Sigues ahí?")

    frames = await frame_with(communicator, "¿Sigues ahí?")
    last = frames[-1]
    assert last["snapshot"] is False
    assert last["seq"] == opened["seq"] + len(frames)
    assert "¿Sigues ahí?" in html_of(last, "conversation")
    # On screen, so already read: no unread badge for it.
    assert 'aria-label="1 unread"' not in html_of(last, "conversations")
    await communicator.disconnect()


@transactional
@pytest.mark.asyncio
async def test_messages_while_disconnected_are_in_the_snapshot_after_reconnecting(
    ana, with_ana, customer
):
    communicator, _ = await console_of(ana)
    await communicator.disconnect()

    await database_sync_to_async(customer.say)("Primero")
    await database_sync_to_async(customer.say)("Segundo")

    again, snapshot = await console_of(ana)
    assert 'aria-label="2 unread"' in html_of(snapshot, "conversations")
    await again.send_json_to({"type": "open", "conversation": with_ana.pk})
    frame = await again.receive_json_from(timeout=2)
    conversation = html_of(frame, "conversation")
    assert conversation.index("Primero") < conversation.index("Segundo")
    await again.disconnect()


# Supervisors' socket


@transactional
@pytest.mark.asyncio
async def test_the_supervisors_socket_is_for_supervisors(ana, sam):
    refused, connected, code = await open_socket(ana, path="/ws/supervisor/")
    assert not connected
    assert code == 4403
    await refused.disconnect()

    communicator, connected, _ = await open_socket(sam, path="/ws/supervisor/")
    assert connected
    frame = await communicator.receive_json_from(timeout=2)
    assert frame["snapshot"] is True
    assert ids_of(frame) == ["board"]
    assert '<th scope="row">Spanish</th>' in html_of(frame)
    assert '<th scope="row">ana</th>' in html_of(frame)
    await communicator.disconnect()


# Presence


@transactional
@pytest.mark.asyncio
async def test_connecting_marks_the_agent_as_seen(ana):
    worker = await database_sync_to_async(worker_of)(ana)
    before = timezone.now()

    communicator, _ = await console_of(ana)

    presence = await database_sync_to_async(Presence.objects.get)(worker=worker)
    assert presence.last_seen >= before
    await communicator.disconnect()


@transactional
@pytest.mark.asyncio
async def test_a_ping_marks_the_agent_as_seen(ana):
    worker = await database_sync_to_async(worker_of)(ana)
    communicator, snapshot = await console_of(ana)
    long_ago = timezone.now() - timedelta(hours=1)
    await database_sync_to_async(Presence.objects.filter(worker=worker).update)(
        last_seen=long_ago
    )

    await communicator.send_json_to({"type": "ping", "seq": snapshot["seq"]})
    await communicator.receive_json_from(timeout=2)

    presence = await database_sync_to_async(Presence.objects.get)(worker=worker)
    assert presence.last_seen > long_ago + timedelta(minutes=59)
    await communicator.disconnect()


@pytest.mark.django_db
def test_a_silent_available_agent_is_moved_offline(ana, ben, settings):
    settings.SWITCHBOARD_CONSOLE_OFFLINE_AFTER = 120
    silent, recent = make_available(ana), make_available(ben)
    now = timezone.now()
    Presence.objects.create(worker=silent, last_seen=now - timedelta(seconds=121))
    Presence.objects.create(worker=recent, last_seen=now - timedelta(seconds=60))

    moved = sweep_absent()

    assert moved == 1
    assert worker_of(ana).activity.name == "Offline"
    assert worker_of(ben).activity.name == "Available"


@pytest.mark.django_db
def test_the_sweep_follows_the_setting(ana, settings):
    settings.SWITCHBOARD_CONSOLE_OFFLINE_AFTER = 30
    worker = make_available(ana)
    Presence.objects.create(
        worker=worker, last_seen=timezone.now() - timedelta(seconds=45)
    )

    assert sweep_absent() == 1
    assert worker_of(ana).activity.name == "Offline"


@pytest.mark.django_db
def test_the_sweep_leaves_agents_who_are_not_available_alone(ana, settings):
    settings.SWITCHBOARD_CONSOLE_OFFLINE_AFTER = 120
    worker = worker_of(ana)
    Presence.objects.create(
        worker=worker, last_seen=timezone.now() - timedelta(hours=2)
    )
    routing.set_worker_activity(worker_id=worker.pk, activity="Break")

    assert sweep_absent() == 0
    assert worker_of(ana).activity.name == "Break"


def _status_of_last_reply(conversation_id: int) -> None:
    """A status callback's live update for the conversation's latest message."""
    from django.db import transaction

    from bots.events import publish_message_event
    from bots.models import Message

    message = Message.objects.filter(conversation_id=conversation_id).latest("pk")
    with transaction.atomic():
        publish_message_event(message, "message.updated")


@transactional
@pytest.mark.asyncio
async def test_a_frame_carries_only_the_fragments_its_event_can_change(
    ana, with_ana, customer
):
    communicator, snapshot = await console_of(ana)

    await database_sync_to_async(customer.say)("Una pregunta")
    received = await communicator.receive_json_from(timeout=2)
    await database_sync_to_async(_status_of_last_reply)(with_ana.pk)
    updated = await communicator.receive_json_from(timeout=2)

    # Not open: the list gets the unread badge; a status change shows nowhere.
    assert ids_of(received) == ["conversations"]
    assert 'aria-label="1 unread"' in html_of(received, "conversations")
    assert (updated["fragments"], updated["seq"]) == ([], received["seq"] + 1)
    await communicator.disconnect()


def _burst(user, count: int) -> None:
    """`count` routing events for the user's worker, published at one commit."""
    from django.db import transaction

    from routing.realtime import publish_on_commit

    group = worker_group(worker_of(user).pk)
    with transaction.atomic():
        for _ in range(count):
            publish_on_commit([group], "worker.activity.update")


@transactional
@pytest.mark.asyncio
async def test_a_burst_of_events_is_sent_in_fewer_frames_that_cover_every_number(ana):
    communicator, snapshot = await console_of(ana)

    await database_sync_to_async(_burst)(ana, 6)
    frames = []
    while not frames or frames[-1]["seq"] < snapshot["seq"] + 6:
        frames.append(await communicator.receive_json_from(timeout=2))

    covered = [(f.get("first", f["seq"]), f["seq"]) for f in frames]
    assert covered[0][0] == snapshot["seq"] + 1
    assert all(b[0] == a[1] + 1 for a, b in zip(covered, covered[1:], strict=False))
    assert len(frames) < 6
    assert ids_of(frames[-1]) == ["status", "offers", "conversations"]
    await communicator.disconnect()


def _second_conversation(user, client, customer):
    customer.ask_for_agent()
    offer = pending_offer_of(user)
    assert client.post(f"/console/offers/{offer.pk}/accept").status_code == 200
    return customer.conversation


@transactional
@pytest.mark.asyncio
async def test_a_message_marked_read_is_always_in_a_frame_even_when_switching(
    ana, ana_client, with_ana, customer, new_customer
):
    other = await database_sync_to_async(_second_conversation)(
        ana, ana_client, new_customer("Otro")
    )
    communicator, _ = await console_of(ana)
    await communicator.send_json_to({"type": "open", "conversation": with_ana.pk})
    await communicator.receive_json_from(timeout=2)

    # The message lands on the open conversation as the agent switches away.
    await database_sync_to_async(customer.say)("Justo ahora")
    await communicator.send_json_to({"type": "open", "conversation": other.pk})
    frames = await frame_with(communicator, f'data-conversation="{other.pk}"')

    shown = any("Justo ahora" in html_of(f, "conversation") for f in frames)
    unread = 'aria-label="1 unread"' in html_of(frames[-1], "conversations")
    assert shown or unread
    await communicator.disconnect()


def _reply(client, conversation_id: int) -> int:
    from bots.models import Message

    response = client.post(
        f"/console/conversations/{conversation_id}/send", {"body": "Enseguida"}
    )
    assert response.status_code == 200
    return Message.objects.filter(conversation_id=conversation_id).latest("pk").pk


def _delivered(message_id: int) -> None:
    """Handed over to the backend, then reported delivered."""
    from bots.messaging.api import deliver
    from bots.services.status import advance_status

    deliver(message_id=message_id)
    advance_status(message_id=message_id, status="delivered")


@transactional
@pytest.mark.asyncio
async def test_ticks_of_a_reply_on_screen_come_as_that_message_alone(
    ana, ana_client, with_ana
):
    communicator, _ = await console_of(ana)
    await communicator.send_json_to({"type": "open", "conversation": with_ana.pk})
    await communicator.receive_json_from(timeout=2)
    reply = await database_sync_to_async(_reply)(ana_client, with_ana.pk)
    await frame_with(communicator, "Enseguida")

    await database_sync_to_async(_delivered)(reply)
    frames = await frame_with(communicator, "status-delivered")

    assert all(ids_of(frame) == [f"message-{reply}"] for frame in frames)
    assert "✓✓" in html_of(frames[-1])
    await communicator.disconnect()
