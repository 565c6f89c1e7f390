"""The console's pages and actions through the Django test client: who may do what,
and what each action changes."""

import re
import time
from datetime import timedelta
from html import unescape

import pytest
from django.test import Client
from django.utils import timezone

from agents.models import WrapUp
from bots.jobs import deliver_message
from bots.models import Author, Conversation, Direction, Execution, Message
from routing import clock
from routing import services as routing
from routing.models import Event, Reservation, ReservationStatus, Task, TaskStatus
from tests.agents.conftest import (
    HOSTILE,
    logged_in,
    make_available,
    pending_offer,
    worker_of,
)

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
CONSOLE = "/console/"
SUPERVISOR = "/console/supervisor/"
REMINDER_VALUES = [
    "Lucía",
    "odontología",
    "martes",
    "10:00",
    "mayo",
    "Dra. Ruiz",
    "Sede Norte",
]


def page(response) -> str:
    return response.content.decode()


def error_of(response) -> str:
    """The text of the console's #error element in an action's response."""
    found = re.search(r'<div id="error"[^>]*>(.*?)</div>', page(response), re.S)
    assert found, "no #error element in the response"
    return unescape(found.group(1).strip())


def transcript_of(response) -> str:
    found = re.search(r'<ol class="transcript".*?</ol>', page(response), re.S)
    assert found, "no transcript in the response"
    return found.group(0)


def offers_of(response) -> str:
    found = re.search(r'<section id="offers".*?</section>', page(response), re.S)
    assert found, "no offers in the response"
    return found.group(0)


def url(conversation: Conversation, action: str = "") -> str:
    base = f"/console/conversations/{conversation.pk}"
    return f"{base}/{action}" if action else base


def reply(client: Client, conversation: Conversation, body: str) -> int:
    """The agent sends `body` from the console; the response's status code."""
    return client.post(url(conversation, "send"), {"body": body}).status_code


def login(client: Client, username: str, password: str):
    return client.post(LOGIN, {"username": username, "password": password})


def outside_whatsapp_window(conversation: Conversation) -> None:
    """The customer last wrote more than 24 hours ago."""
    Message.objects.filter(
        from_address=conversation.contact.address, direction=Direction.INBOUND
    ).update(created_at=timezone.now() - timedelta(hours=25))


# Logging in


def test_the_login_page_names_its_fields(client, demo):
    response = client.get(LOGIN)

    assert response.status_code == 200
    assert '<label for="id_username">Username</label>' in page(response)
    assert '<label for="id_password">Password</label>' in page(response)


def test_an_agent_logs_in_and_lands_on_the_console(client, ana):
    response = login(client, "ana", "demo")

    assert response.status_code == 302
    assert response["Location"] == CONSOLE
    assert client.get(CONSOLE).status_code == 200


def test_a_wrong_password_says_so(client, ana):
    response = login(client, "ana", "nope")

    assert response.status_code == 200
    assert "Wrong username or password." in page(response)


def test_the_login_is_locked_after_too_many_wrong_passwords(client, ana, settings):
    settings.SWITCHBOARD_LOGIN_ATTEMPTS = 5
    settings.SWITCHBOARD_LOGIN_LOCKOUT_SECONDS = 300
    for _ in range(5):
        assert login(client, "ana", "guess").status_code == 200

    sixth = login(client, "ana", "guess")
    right = login(client, "ana", "demo")

    assert sixth.status_code == 429
    assert "Too many failed attempts" in page(sixth)
    assert right.status_code == 429
    assert "Too many failed attempts" in page(right)
    assert "_auth_user_id" not in client.session
    assert client.get(CONSOLE).status_code == 302


def test_a_locked_login_locks_only_that_user(client, ana, ben, settings):
    settings.SWITCHBOARD_LOGIN_ATTEMPTS = 2
    for _ in range(3):
        login(client, "ana", "guess")

    assert login(client, "ana", "demo").status_code == 429
    assert login(Client(), "ben", "demo").status_code == 302


def test_the_login_opens_again_once_the_window_has_passed(client, ana, settings):
    settings.SWITCHBOARD_LOGIN_ATTEMPTS = 2
    settings.SWITCHBOARD_LOGIN_LOCKOUT_SECONDS = 1
    for _ in range(3):
        login(client, "ana", "guess")
    assert login(client, "ana", "demo").status_code == 429

    time.sleep(1.1)

    response = login(client, "ana", "demo")
    assert response.status_code == 302
    assert response["Location"] == CONSOLE


# The console page


def test_the_console_asks_for_a_login_first(client, demo):
    response = client.get(CONSOLE)

    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next={CONSOLE}"


def test_the_console_is_for_users_with_a_worker(sam, sam_client):
    assert sam_client.get(CONSOLE).status_code == 403

    routing.create_worker(name="sam", attributes={}, capacity={"chat": 1}, user=sam)

    assert sam_client.get(CONSOLE).status_code == 200


def test_the_console_shows_the_status_control_with_the_current_activity(
    ana, ana_client
):
    make_available(ana)

    html = page(ana_client.get(CONSOLE))

    assert '<label for="activity">Status</label>' in html
    assert '<option value="Available" selected>Available</option>' in html
    assert '<option value="Offline">Offline</option>' in html


def test_an_offer_shows_who_where_from_and_the_last_words(ana_client, offer_to_ana):
    html = offers_of(ana_client.get(CONSOLE))

    assert f'id="offer-{offer_to_ana.pk}"' in html
    assert "Lucía Gómez" in html
    assert "WhatsApp" in html
    assert "Spanish" in html
    assert "“2”" in html  # the customer's last message
    assert f"/console/offers/{offer_to_ana.pk}/accept" in html
    assert ">Accept</button>" in html
    assert ">Reject</button>" in html


# Accept and reject


def test_accepting_an_offer_opens_the_conversation_with_the_agent(
    ana_client, offer_to_ana, customer
):
    response = ana_client.post(f"/console/offers/{offer_to_ana.pk}/accept")

    assert response.status_code == 200
    conversation = customer.conversation
    assert conversation.phase == "agent"
    offer_to_ana.refresh_from_db()
    assert offer_to_ana.status == ReservationStatus.ACCEPTED
    assert conversation.task.status == TaskStatus.ASSIGNED
    assert f'data-conversation="{conversation.pk}"' in page(response)
    transcript = transcript_of(response)
    assert "hola" in transcript
    assert "Escribe 1 para cancelar" in transcript  # the bot's part too
    assert 'aria-label="Message"' in page(response)
    assert ">Send</button>" in page(response)
    assert f"offer-{offer_to_ana.pk}" not in offers_of(response)
    assert error_of(response) == ""


def test_accepting_someone_elses_offer_is_refused_and_changes_nothing(
    ben_client, offer_to_ana, customer
):
    response = ben_client.post(f"/console/offers/{offer_to_ana.pk}/accept")

    assert response.status_code == 403
    offer_to_ana.refresh_from_db()
    assert offer_to_ana.status == ReservationStatus.PENDING
    assert customer.conversation.phase == "queued"


def test_accepting_an_offer_that_timed_out_says_so(ana_client, offer_to_ana, customer):
    Reservation.objects.filter(pk=offer_to_ana.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    routing.sweep()

    response = ana_client.post(f"/console/offers/{offer_to_ana.pk}/accept")

    assert response.status_code == 200
    assert error_of(response) == "This offer has expired or was taken."
    offer_to_ana.refresh_from_db()
    assert offer_to_ana.status == ReservationStatus.TIMEOUT
    assert customer.conversation.phase == "queued"
    assert f"offer-{offer_to_ana.pk}" not in offers_of(response)


def test_rejecting_an_offer_removes_it_and_routes_the_task_again(
    ana_client, offer_to_ana, customer
):
    response = ana_client.post(f"/console/offers/{offer_to_ana.pk}/reject")

    assert response.status_code == 200
    offer_to_ana.refresh_from_db()
    assert offer_to_ana.status == ReservationStatus.REJECTED
    assert f"offer-{offer_to_ana.pk}" not in offers_of(response)
    assert "No offers right now." in offers_of(response)
    assert customer.conversation.task.status == TaskStatus.PENDING
    assert customer.conversation.phase == "queued"


def test_rejecting_someone_elses_offer_is_refused(ben_client, offer_to_ana):
    response = ben_client.post(f"/console/offers/{offer_to_ana.pk}/reject")

    assert response.status_code == 403
    offer_to_ana.refresh_from_db()
    assert offer_to_ana.status == ReservationStatus.PENDING


def test_actions_only_answer_posts(ana_client, offer_to_ana):
    response = ana_client.get(f"/console/offers/{offer_to_ana.pk}/accept")

    assert response.status_code == 405
    offer_to_ana.refresh_from_db()
    assert offer_to_ana.status == ReservationStatus.PENDING


def test_an_agent_holds_several_conversations_up_to_her_capacity(
    ana, ana_client, new_customer
):
    worker = make_available(ana)
    first, second, third = (new_customer(n) for n in ("Uno", "Dos", "Tres"))
    for someone in (first, second, third):
        someone.ask_for_agent()
        offer = Reservation.objects.filter(
            worker=worker, status=ReservationStatus.PENDING
        ).first()
        if offer is not None:
            ana_client.post(f"/console/offers/{offer.pk}/accept")

    listed = page(ana_client.get(CONSOLE))

    assert first.conversation.phase == second.conversation.phase == "agent"
    assert third.conversation.phase == "queued"  # chat capacity 2
    assert f"?conversation={first.conversation.pk}" in listed
    assert f"?conversation={second.conversation.pk}" in listed
    assert f"?conversation={third.conversation.pk}" not in listed


def test_the_conversation_list_counts_unread_messages_until_opened(
    ana_client, with_ana, customer
):
    customer.say("¿Hola?")
    customer.say("¿Hay alguien?")

    assert 'aria-label="2 unread"' in page(ana_client.get(CONSOLE))

    ana_client.get(url(with_ana))

    assert "unread" not in page(ana_client.get(CONSOLE))


# Replying


def test_a_reply_is_stored_as_the_agents_and_reaches_the_customer(
    ana, ana_client, with_ana, customer, outbox
):
    response = ana_client.post(url(with_ana, "send"), {"body": " Buenos días "})

    assert response.status_code == 200
    assert error_of(response) == ""
    reply = Message.objects.get(direction=Direction.OUTBOUND, author=Author.AGENT)
    assert reply.body == "Buenos días"
    assert reply.agent == ana
    assert reply.conversation == with_ana
    assert reply.to_address == customer.address
    assert "Buenos días" in transcript_of(response)
    deliver_message(reply.pk)
    assert [(m.to_address, m.body) for m in outbox] == [
        (customer.address, "Buenos días")
    ]


def test_an_empty_reply_is_refused_with_a_reason(ana_client, with_ana):
    response = ana_client.post(url(with_ana, "send"), {"body": "   "})

    assert response.status_code == 200
    assert error_of(response) == "Write a message first."
    assert not Message.objects.filter(author=Author.AGENT).exists()


def test_an_agent_cannot_reply_in_someone_elses_conversation(ben, ben_client, with_ana):
    make_available(ben)

    response = ben_client.post(url(with_ana, "send"), {"body": "Hello"})

    assert response.status_code == 403
    assert not Message.objects.filter(author=Author.AGENT).exists()


def test_outside_the_whatsapp_window_the_reply_box_offers_templates(
    ana_client, with_ana
):
    outside_whatsapp_window(with_ana)

    html = page(ana_client.get(url(with_ana)))

    assert 'aria-label="Message"' not in html
    assert 'name="template"' in html
    assert '<option value="dentalink_reminder">' in html
    assert ">Send</button>" in html


def test_a_template_with_its_values_is_sent_outside_the_window(
    ana, ana_client, with_ana, customer, outbox
):
    outside_whatsapp_window(with_ana)

    response = ana_client.post(
        url(with_ana, "send"),
        {"template": "dentalink_reminder", "variables": "\n".join(REMINDER_VALUES)},
    )

    assert error_of(response) == ""
    reply = Message.objects.get(author=Author.AGENT)
    assert reply.template.name == "dentalink_reminder"
    assert reply.template_variables["1"] == "Lucía"
    assert reply.template_variables["7"] == "Sede Norte"
    assert "Lucía, somos KeyrusCare" in reply.body
    assert "Lugar: Sede Norte" in reply.body
    assert reply.agent == ana
    deliver_message(reply.pk)
    assert outbox[-1].to_address == customer.address
    assert outbox[-1].content_variables["6"] == "Dra. Ruiz"


def test_free_text_outside_the_window_is_refused_with_a_reason(ana_client, with_ana):
    outside_whatsapp_window(with_ana)

    response = ana_client.post(url(with_ana, "send"), {"body": "¿Sigues ahí?"})

    assert "24 hours" in error_of(response)
    assert not Message.objects.filter(author=Author.AGENT).exists()


def test_a_template_missing_a_value_is_refused_with_a_reason(ana_client, with_ana):
    outside_whatsapp_window(with_ana)

    response = ana_client.post(
        url(with_ana, "send"),
        {"template": "dentalink_reminder", "variables": "Lucía"},
    )

    assert "needs a value for {{2}}" in error_of(response)
    assert not Message.objects.filter(author=Author.AGENT).exists()


# Canned responses


def test_canned_responses_are_searched_by_title_body_or_shortcut(ana_client):
    by_title = page(ana_client.get("/console/canned", {"q": "cita"}))
    by_body = page(ana_client.get("/console/canned", {"q": "buen día"}))
    by_shortcut = page(ana_client.get("/console/canned", {"q": "momento"}))
    everything = page(ana_client.get("/console/canned"))
    nothing = page(ana_client.get("/console/canned", {"q": "zzz"}))

    assert ">Cita cancelada</button>" in by_title
    assert "Saludo" not in by_title
    assert ">Despedida</button>" in by_body
    assert ">Un momento</button>" in by_shortcut
    assert 'data-body="Dame un momento mientras reviso tu información."' in (
        by_shortcut
    )
    assert everything.count("insert-canned") == 4
    assert "Nothing found." in nothing


def test_canned_responses_are_for_agents(client, sam_client, demo):
    assert client.get("/console/canned", {"q": "cita"}).status_code == 302
    assert sam_client.get("/console/canned", {"q": "cita"}).status_code == 403


# Transfers


def test_a_transfer_to_an_agent_stays_with_the_first_until_the_other_accepts(
    ben, ana_client, ben_client, with_ana, django_capture_on_commit_callbacks
):
    ben_worker = make_available(ben)
    original = with_ana.task

    response = ana_client.post(
        url(with_ana, "transfer"),
        {"target": "worker:ben", "note": "Prefers English"},
    )

    assert response.status_code == 200
    assert error_of(response) == ""
    offer = pending_offer(ben_worker)
    assert offer.task.transferred_from == original
    with_ana.refresh_from_db()
    assert with_ana.task == original
    assert with_ana.phase == "agent"
    # Still ana's: she can go on writing while ben makes up his mind.
    assert reply(ana_client, with_ana, "Un momento") == 200
    assert reply(ben_client, with_ana, "Hi") == 403
    offers = offers_of(ben_client.get(CONSOLE))
    assert "Lucía Gómez" in offers
    assert "Prefers English" in offers
    assert "“Un momento”" not in offers  # the last words are the customer's

    with django_capture_on_commit_callbacks(execute=True):
        accepted = ben_client.post(f"/console/offers/{offer.pk}/accept")

    assert accepted.status_code == 200
    assert "hola" in transcript_of(accepted)
    with_ana.refresh_from_db()
    assert with_ana.task == offer.task
    assert with_ana.phase == "agent"
    original.refresh_from_db()
    assert original.status == TaskStatus.COMPLETED
    assert reply(ben_client, with_ana, "Hi") == 200
    assert reply(ana_client, with_ana, "?") == 403
    assert f"?conversation={with_ana.pk}" not in page(ana_client.get(CONSOLE))
    assert f"?conversation={with_ana.pk}" in page(ben_client.get(CONSOLE))


def test_a_transfer_to_a_queue_is_offered_to_its_agents(ben, ana_client, with_ana):
    ben_worker = make_available(ben)

    response = ana_client.post(
        url(with_ana, "transfer"), {"target": "queue:English", "note": ""}
    )

    assert error_of(response) == ""
    transferred = Task.objects.get(transferred_from=with_ana.task)
    assert transferred.direct_queue.name == "English"
    assert pending_offer(ben_worker).task == transferred


def test_a_transfer_nobody_accepts_leaves_the_conversation_with_the_agent(
    ana_client, with_ana, settings
):
    settings.SWITCHBOARD_TRANSFER_TIMEOUT = 30
    original = with_ana.task
    ana_client.post(url(with_ana, "transfer"), {"target": "worker:ben"})
    transferred = Task.objects.get(transferred_from=original)

    later = timezone.now() + timedelta(seconds=31)
    with clock.using(lambda: later):
        routing.sweep()

    transferred.refresh_from_db()
    assert transferred.status == TaskStatus.CANCELED
    with_ana.refresh_from_db()
    assert with_ana.task == original
    assert with_ana.phase == "agent"
    assert reply(ana_client, with_ana, "Sigo aquí") == 200


def test_a_transfer_to_nowhere_says_so(ana_client, with_ana):
    response = ana_client.post(url(with_ana, "transfer"), {"target": "queue:Nowhere"})

    assert error_of(response) == "no queue named 'Nowhere'"
    assert not Task.objects.filter(transferred_from=with_ana.task).exists()


def test_an_agent_cannot_transfer_someone_elses_conversation(ben_client, with_ana):
    response = ben_client.post(url(with_ana, "transfer"), {"target": "worker:ben"})

    assert response.status_code == 403
    assert not Task.objects.filter(transferred_from=with_ana.task).exists()


# Completing


def test_completing_records_the_wrapup_and_closes_the_conversation(
    ana, ana_client, with_ana
):
    task = with_ana.task

    response = ana_client.post(
        url(with_ana, "complete"),
        {"disposition": "resolved", "notes": " Cita cancelada por teléfono "},
    )

    assert response.status_code == 200
    assert error_of(response) == ""
    wrapup = WrapUp.objects.get()
    assert (wrapup.conversation, wrapup.task, wrapup.agent) == (with_ana, task, ana)
    assert wrapup.disposition.code == "resolved"
    assert wrapup.notes == "Cita cancelada por teléfono"
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED
    with_ana.refresh_from_db()
    assert with_ana.phase == "closed"
    assert with_ana.closed_at is not None
    assert f"?conversation={with_ana.pk}" not in page(response)


def test_completing_withdraws_a_transfer_still_waiting_for_an_agent(
    ben, ana_client, with_ana, django_capture_on_commit_callbacks
):
    ana_client.post(url(with_ana, "transfer"), {"target": "worker:ben"})
    offer = pending_offer(make_available(ben))

    with django_capture_on_commit_callbacks(execute=True):
        ana_client.post(url(with_ana, "complete"), {"disposition": "resolved"})

    # Otherwise ben could take a task that serves no conversation, and keep it.
    offer.refresh_from_db()
    assert offer.status == ReservationStatus.CANCELED
    assert offer.task.status == TaskStatus.CANCELED


def test_after_completing_the_customers_next_message_starts_the_bot_again(
    ana_client, with_ana, customer
):
    ana_client.post(url(with_ana, "complete"), {"disposition": ""})
    executions = Execution.objects.count()

    customer.say("hola de nuevo")

    assert Execution.objects.count() == executions + 1
    conversation = customer.conversation
    assert conversation.pk != with_ana.pk
    assert conversation.phase == "bot"
    assert Message.objects.filter(conversation=conversation, author=Author.BOT).exists()


def test_completing_with_an_unknown_code_is_refused_and_changes_nothing(
    ana_client, with_ana
):
    response = ana_client.post(url(with_ana, "complete"), {"disposition": "bogus"})

    assert error_of(response) == "Unknown wrap-up code 'bogus'."
    assert not WrapUp.objects.exists()
    with_ana.refresh_from_db()
    assert with_ana.phase == "agent"
    assert with_ana.task.status == TaskStatus.ASSIGNED


def test_an_agent_cannot_complete_someone_elses_conversation(ben_client, with_ana):
    response = ben_client.post(url(with_ana, "complete"), {"disposition": ""})

    assert response.status_code == 403
    with_ana.refresh_from_db()
    assert with_ana.phase == "agent"


# Status


def test_changing_status_moves_the_worker_and_logs_an_event(ana, ana_client):
    worker = worker_of(ana)
    events = Event.objects.filter(type="worker.activity.update", worker=worker)
    before = events.count()

    response = ana_client.post("/console/status", {"activity": "Break"})

    assert response.status_code == 200
    assert error_of(response) == ""
    assert worker_of(ana).activity.name == "Break"
    assert events.count() == before + 1
    assert events.order_by("-pk").first().data == {"activity": "Break"}
    assert '<option value="Break" selected>Break</option>' in page(response)


def test_an_unknown_status_is_refused_with_a_reason(ana, ana_client):
    response = ana_client.post("/console/status", {"activity": "Napping"})

    assert error_of(response) == "no activity named 'Napping'"
    assert worker_of(ana).activity.name == "Offline"


def test_becoming_available_brings_the_waiting_offer(ana, ana_client, customer):
    customer.ask_for_agent()

    response = ana_client.post("/console/status", {"activity": "Available"})

    assert response.status_code == 200
    assert pending_offer(worker_of(ana)).task == customer.conversation.task
    assert "Lucía Gómez" in offers_of(ana_client.get(CONSOLE))


# Supervisors


def test_the_supervisor_dashboard_is_for_supervisors(client, ana_client, sam_client):
    assert client.get(SUPERVISOR).status_code == 302
    assert ana_client.get(SUPERVISOR).status_code == 403
    assert sam_client.get(SUPERVISOR).status_code == 200


def test_the_dashboard_shows_queues_agents_and_waiting_customers(sam_client, customer):
    customer.ask_for_agent()  # nobody is available: it waits

    html = page(sam_client.get(SUPERVISOR))

    for queue in ("Spanish", "English", "Everyone"):
        assert f'<th scope="row">{queue}</th>' in html
    assert '<th scope="row">ana</th>' in html
    assert '<th scope="row">ben</th>' in html
    assert "Lucía Gómez" in html
    assert "Waiting for an agent" in html
    assert f"/console/supervisor/tasks/{customer.conversation.task_id}/cancel" in html


def test_the_dashboard_shows_each_queues_sla(ana, ana_client, sam_client, customer):
    make_available(ana)
    customer.ask_for_agent()
    offer = pending_offer(worker_of(ana))
    ana_client.post(f"/console/offers/{offer.pk}/accept")  # answered at once

    html = page(sam_client.get(SUPERVISOR))

    row = re.search(r'<th scope="row">Spanish</th>(.*?)</tr>', html, re.S).group(1)
    cells = re.findall(r"<td>(.*?)</td>", row, re.S)
    # Waiting, offered, with agents, longest wait, SLA, available, eligible.
    assert cells[4].strip() == "100%"


def test_a_supervisor_changes_an_agents_status(ana, sam_client, ana_client):
    worker = worker_of(ana)
    path = f"/console/supervisor/workers/{worker.pk}/status"

    assert ana_client.post(path, {"activity": "Available"}).status_code == 403
    response = sam_client.post(path, {"activity": "Available"})

    assert response.status_code == 200
    assert worker_of(ana).activity.name == "Available"
    assert Event.objects.filter(
        type="worker.activity.update", worker=worker, data={"activity": "Available"}
    ).exists()
    assert sam_client.post(path, {"activity": "Napping"}).status_code == 400


def test_a_supervisor_cancels_a_waiting_task(sam_client, ana_client, customer):
    conversation = customer.ask_for_agent()
    path = f"/console/supervisor/tasks/{conversation.task_id}/cancel"

    assert ana_client.post(path).status_code == 403
    response = sam_client.post(path)

    assert response.status_code == 200
    conversation.task.refresh_from_db()
    assert conversation.task.status == TaskStatus.CANCELED
    assert f"/console/supervisor/tasks/{conversation.task_id}/cancel" not in page(
        response
    )


def test_a_supervisor_reads_any_conversation_without_a_reply_box(
    sam_client, with_ana, ana_client
):
    ana_client.post(url(with_ana, "send"), {"body": "Con gusto te ayudo"})

    response = sam_client.get(f"/console/supervisor/conversations/{with_ana.pk}")

    assert response.status_code == 200
    transcript = transcript_of(response)
    assert "hola" in transcript
    assert "Con gusto te ayudo" in transcript
    assert "Ana García" in transcript
    assert "read-only" in page(response)
    assert ">Send</button>" not in page(response)
    assert 'name="body"' not in page(response)


def test_agents_cannot_open_the_supervisors_conversation_view(ana_client, with_ana):
    path = f"/console/supervisor/conversations/{with_ana.pk}"

    assert ana_client.get(path).status_code == 403


# Who sees which conversation


def test_an_agent_sees_the_conversations_she_holds(ana_client, with_ana):
    response = ana_client.get(url(with_ana))

    assert response.status_code == 200
    assert "hola" in transcript_of(response)


def test_an_agent_cannot_open_a_conversation_she_never_held(
    ben, ana_client, ben_client, new_customer
):
    routing.set_worker_attributes(
        worker_id=worker_of(ben).pk, attributes={"languages": ["es", "en"]}
    )
    bens_worker = make_available(ben)
    someone = new_customer("Someone Else")
    someone.ask_for_agent()
    ben_client.post(f"/console/offers/{pending_offer(bens_worker).pk}/accept")
    conversation = someone.conversation
    assert conversation.phase == "agent"

    assert ana_client.get(url(conversation)).status_code == 403
    as_page = ana_client.get(CONSOLE, {"conversation": conversation.pk})
    assert as_page.status_code == 403
    assert "Someone Else" not in page(as_page)
    assert ben_client.get(url(conversation)).status_code == 200


def test_an_agent_still_sees_a_conversation_she_completed(ana_client, with_ana):
    ana_client.post(url(with_ana, "complete"), {"disposition": "resolved"})

    response = ana_client.get(url(with_ana))

    assert response.status_code == 200
    assert "hola" in transcript_of(response)
    assert ">Send</button>" not in page(response)


def test_an_agent_still_sees_a_conversation_she_transferred(
    ben, ana_client, ben_client, with_ana, django_capture_on_commit_callbacks
):
    ana_client.post(url(with_ana, "transfer"), {"target": "worker:ben"})
    offer = pending_offer(make_available(ben))
    with django_capture_on_commit_callbacks(execute=True):
        ben_client.post(f"/console/offers/{offer.pk}/accept")

    # She held it: the issue lets agents see what they hold or held.
    response = ana_client.get(url(with_ana))

    assert response.status_code == 200
    assert ">Send</button>" not in page(response)


# Escaping customer text


@pytest.fixture
def hostile_customer(new_customer, ana):
    """A customer whose name and words are HTML, waiting in ana's offers."""
    someone = new_customer(HOSTILE)
    make_available(ana)
    someone.say(HOSTILE)
    someone.say("2")
    someone.say(HOSTILE)
    return someone


def assert_escaped(html: str) -> None:
    assert "<script>alert(1)" not in html
    assert "<b>x</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;" in html


def test_customer_text_is_escaped_everywhere_it_is_shown(
    hostile_customer, ana, ana_client, sam_client
):
    offer = pending_offer(worker_of(ana))

    console = page(ana_client.get(CONSOLE))
    assert_escaped(console)
    assert_escaped(offers_of(ana_client.get(CONSOLE)))

    accepted = ana_client.post(f"/console/offers/{offer.pk}/accept")
    assert_escaped(page(accepted))
    assert_escaped(transcript_of(accepted))
    conversation = hostile_customer.conversation
    assert_escaped(page(ana_client.get(url(conversation))))
    assert_escaped(page(ana_client.get(CONSOLE, {"conversation": conversation.pk})))

    assert_escaped(page(sam_client.get(SUPERVISOR)))
    supervised = sam_client.get(f"/console/supervisor/conversations/{conversation.pk}")
    assert_escaped(page(supervised))
    assert_escaped(transcript_of(supervised))


# CSRF


def test_an_action_without_the_csrf_token_is_refused(ana):
    browser = logged_in(ana, enforce_csrf_checks=True)

    response = browser.post("/console/status", {"activity": "Available"})

    assert response.status_code == 403
    assert worker_of(ana).activity.name == "Offline"


def test_an_action_with_the_pages_csrf_header_goes_through(ana):
    browser = logged_in(ana, enforce_csrf_checks=True)
    html = page(browser.get(CONSOLE))
    token = re.search(r'"X-CSRFToken": "([^"]+)"', html).group(1)

    response = browser.post(
        "/console/status", {"activity": "Available"}, HTTP_X_CSRFTOKEN=token
    )

    assert response.status_code == 200
    assert worker_of(ana).activity.name == "Available"


def test_a_supervisor_action_without_the_csrf_token_is_refused(ana, sam):
    browser = logged_in(sam, enforce_csrf_checks=True)

    response = browser.post(
        f"/console/supervisor/workers/{worker_of(ana).pk}/status",
        {"activity": "Available"},
    )

    assert response.status_code == 403
    assert worker_of(ana).activity.name == "Offline"
