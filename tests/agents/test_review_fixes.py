"""Behaviour added after review: moving a waiting task, a transfer to a queue not
going back to its sender, late accepts, absent agents, malformed socket commands."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents import presence
from routing import services as routing
from routing.models import Reservation, ReservationStatus, Task, TaskQueue, Worker
from tests.agents.conftest import make_available, worker_of

pytestmark = pytest.mark.django_db


def test_a_supervisor_moves_a_waiting_task_to_another_queue(sam_client, customer, ben):
    conversation = customer.ask_for_agent()  # waits in Spanish: nobody available
    task = conversation.task

    response = sam_client.post(
        f"/console/supervisor/tasks/{task.pk}/move", {"queue": "English"}
    )

    assert response.status_code == 200
    task.refresh_from_db()
    assert task.queue.name == "English"
    assert task.events.filter(type="task-queue.moved").exists()
    make_available(ben)  # ben speaks English only: he gets it now
    assert Reservation.objects.filter(
        task=task, worker=worker_of(ben), status=ReservationStatus.PENDING
    ).exists()


def test_moving_to_an_unknown_queue_is_refused(sam_client, customer):
    task = customer.ask_for_agent().task

    response = sam_client.post(
        f"/console/supervisor/tasks/{task.pk}/move", {"queue": "Nope"}
    )

    assert response.status_code == 400
    assert b"no queue named" in response.content


def test_agents_cannot_move_tasks(ana_client, customer):
    task = customer.ask_for_agent().task

    response = ana_client.post(
        f"/console/supervisor/tasks/{task.pk}/move", {"queue": "English"}
    )

    assert response.status_code == 403


def test_a_supervisor_cancel_closes_the_conversation_at_once(sam_client, customer):
    conversation = customer.ask_for_agent()

    sam_client.post(f"/console/supervisor/tasks/{conversation.task.pk}/cancel")

    conversation.refresh_from_db()
    assert conversation.phase == "closed"


def test_a_transfer_to_a_queue_is_not_offered_back_to_its_sender(
    ana, ana_client, with_ana
):
    TaskQueue.objects.filter(name="Everyone").update(max_reserved_workers=1)

    ana_client.post(
        f"/console/conversations/{with_ana.pk}/transfer", {"target": "queue:Everyone"}
    )

    transfer = Task.objects.get(transferred_from=with_ana.task)
    assert not transfer.reservations.filter(worker=worker_of(ana)).exists()


def test_an_offer_past_its_deadline_cannot_be_accepted_before_the_sweep(
    ana_client, offer_to_ana
):
    Reservation.objects.filter(pk=offer_to_ana.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    response = ana_client.post(f"/console/offers/{offer_to_ana.pk}/accept")

    assert b"expired or was taken" in response.content
    offer_to_ana.refresh_from_db()
    assert offer_to_ana.status == ReservationStatus.PENDING  # the sweep times it out


def test_an_agent_made_available_who_never_opened_a_console_goes_offline(ana, settings):
    worker = make_available(ana)
    Worker.objects.filter(pk=worker.pk).update(
        activity_changed_at=timezone.now() - timedelta(minutes=5)
    )

    assert presence.sweep_absent() == 1
    assert worker_of(ana).activity.name == "Offline"


def test_workers_without_a_login_are_not_swept(demo):
    routing.create_worker(name="robot", activity="Available", capacity={"chat": 1})
    Worker.objects.filter(name="robot").update(
        activity_changed_at=timezone.now() - timedelta(hours=1)
    )

    presence.sweep_absent()

    assert Worker.objects.get(name="robot").activity.name == "Available"
