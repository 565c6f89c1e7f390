"""What each step of one conversation costs: SQL queries and milliseconds.

`python -m bench.costs` runs in the stack's environment after the load (the harness
calls it) and prints JSON on its last line. It walks one customer through the
demo flow in this process, calling the same views (Django's test client), jobs and
renderers the real processes call, and counts the queries of each step. Jobs it
queues go to a queue no worker reads, so nothing runs twice; the publish still
happens. Counts are exact; milliseconds are one sample on a busy machine.
"""

import json
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

WAITING_TASKS = 50


def main() -> None:
    import django

    django.setup()
    from celery import current_app

    current_app.conf.task_default_queue = "bench-costs"  # nobody consumes it
    print(json.dumps(walk()))


def walk() -> dict[str, Any]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from agents.rendering import render_fragments
    from bench.twilio import (
        MESSAGING_PATH,
        STATUS_PATH,
        Signer,
        inbound_fields,
        new_sid,
        status_fields,
    )
    from bots.jobs import deliver_message, process_inbound
    from bots.models import Conversation, Message
    from routing import services as routing
    from routing.models import Activity, Reservation, Worker

    costs: dict[str, Any] = {}

    def step(name: str, action: Callable[[], Any]) -> Any:
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            result = action()
            elapsed = time.perf_counter() - started
        costs[name] = {
            "queries": len(queries.captured_queries),
            "ms": round(elapsed * 1000, 1),
        }
        return result

    signer = Signer(settings.TWILIO_AUTH_TOKEN, settings.PUBLIC_BASE_URL)
    client = Client(HTTP_HOST="127.0.0.1")
    customer = f"whatsapp:+1888{secrets.randbelow(10**7):07d}"

    def post(path: str, fields: dict[str, str]):
        body, headers = signer.encode(path, fields)
        response = client.post(
            path,
            urlencode(fields),
            content_type="application/x-www-form-urlencoded",
            HTTP_X_TWILIO_SIGNATURE=headers["X-Twilio-Signature"],
        )
        assert response.status_code == 200, response.content
        return response

    def say(body: str) -> Message:
        sid = new_sid()
        fields = inbound_fields(sid=sid, customer=customer, body=body, name="Costs")
        step(f"webhook inbound ({body!r})", lambda: post(MESSAGING_PATH, fields))
        message = Message.objects.get(provider_sid=sid)
        step(f"job process_inbound ({body!r})", lambda: process_inbound(message.pk))
        return message

    def last_outbound() -> Message:
        return Message.objects.filter(to_address=customer).latest("pk")

    def deliver_and_report(label: str) -> None:
        sent = last_outbound()
        step(f"job deliver_message ({label})", lambda: deliver_message(sent.pk))
        sent.refresh_from_db()
        fields = status_fields(
            sid=sent.provider_sid or "",
            status="delivered",
            to=customer,
            sender=sent.from_address,
        )
        path = f"{STATUS_PATH}?message={sent.pk}"
        step(f"webhook status ({label})", lambda: post(path, fields))

    # One agent available, everyone else offline: the handoff lands on them.
    available = Activity.objects.get(name="Available")
    offline = Activity.objects.get(name="Offline")
    Worker.objects.exclude(activity=offline).update(activity=offline)
    user = get_user_model().objects.create_user(f"costs{secrets.token_hex(3)}")
    worker = routing.create_worker(
        name=user.username,
        attributes={"languages": ["es", "en"]},
        capacity={"chat": 3},
        user=user,
    )
    Worker.objects.filter(pk=worker.pk).update(activity=available)
    client.force_login(user)
    say("hola")
    deliver_and_report("menu")
    say("2")
    reservation = Reservation.objects.filter(worker=worker).latest("pk")
    frame = ["status", "offers", "conversations"]
    step("socket frame (3 fragments)", lambda: render_fragments(
        frame, user=user, worker=worker
    ))  # fmt: skip
    htmx = {"HTTP_HX_REQUEST": "true"}
    step("console accept", lambda: client.post(
        f"/console/offers/{reservation.pk}/accept", **htmx
    ))  # fmt: skip
    conversation = Conversation.objects.get(task=reservation.task_id)
    step("socket frame (4 fragments, one open)", lambda: render_fragments(
        [*frame, "conversation"], user=user, worker=worker,
        conversation_id=conversation.pk,
    ))  # fmt: skip
    step("console send", lambda: client.post(
        f"/console/conversations/{conversation.pk}/send", {"body": "hola"}, **htmx
    ))  # fmt: skip
    deliver_and_report("agent reply")
    say("pregunta")
    step("console complete", lambda: client.post(
        f"/console/conversations/{conversation.pk}/complete",
        {"disposition": "resolved"}, **htmx,
    ))  # fmt: skip
    # What every completion, reject and activity change runs for the worker it
    # freed: dispatch_for_workers(). Here one agent has room but speaks only
    # English, and the tasks wait in the Spanish step: nothing for them waits.
    # dispatch() is the walk of every waiting task only an edited workflow runs.
    Worker.objects.filter(pk=worker.pk).update(attributes={"languages": ["en"]})
    freed = lambda: routing.dispatch_for_workers([worker.pk])  # noqa: E731
    step("dispatch_for_workers(), 0 waiting", freed)
    for _ in range(WAITING_TASKS):
        routing.create_task(
            workflow="Support", channel="chat", attributes={"language": "es"}
        )
    step(f"dispatch_for_workers(), {WAITING_TASKS} waiting", freed)
    step(f"dispatch() (full walk), {WAITING_TASKS} waiting", routing.dispatch)
    step(f"beat sweep_routing with {WAITING_TASKS} waiting", routing.sweep)
    return costs


if __name__ == "__main__":
    main()
