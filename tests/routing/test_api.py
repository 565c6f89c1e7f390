"""`/api/routing/`: who may read the statistics, their JSON, and the error bodies."""

from datetime import UTC, datetime, timedelta

import pytest

from routing import clock as routing_clock
from routing import services
from routing.models import Reservation, TaskChannel, TaskQueue, Workflow

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
TOKEN = "routing-test-token"


def iso(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def moment(db):
    """The routing clock, set with `moment.at(seconds after T0)`."""

    class Moment:
        now = T0

        def __call__(self) -> datetime:
            return self.now

        def at(self, seconds: float) -> None:
            self.now = T0 + timedelta(seconds=seconds)

    virtual = Moment()
    with routing_clock.using(virtual):
        yield virtual


@pytest.fixture
def support(moment) -> dict[str, int]:
    """Queue Support with ana; one task accepted after 12 s, one canceled after 40 s,
    ana on a break from 50 s; now is 60 s."""
    services.ensure_workspace()
    TaskChannel.objects.create(unique_name="chat")
    queue = TaskQueue.objects.create(name="Support")
    Workflow.objects.create(
        name="Support",
        configuration={"task_routing": {"default_filter": {"queue": "Support"}}},
    )
    ana = services.create_worker(
        name="ana", activity="Available", capacity={"chat": 1}
    ).pk
    first = services.create_task(workflow="Support", channel="chat", attributes={})
    moment.at(12)
    reservation = Reservation.objects.get(task=first)
    services.accept_reservation(reservation_id=reservation.pk)
    moment.at(20)
    second = services.create_task(workflow="Support", channel="chat", attributes={})
    moment.at(50)
    services.set_worker_activity(worker_id=ana, activity="Break")
    moment.at(60)
    services.cancel_task(task_id=second.pk)
    return {"queue": queue.pk, "ana": ana}


@pytest.fixture
def staff_client(client, supervisor):
    client.force_login(supervisor)
    return client


@pytest.fixture
def token(settings):
    settings.SWITCHBOARD_API_TOKENS = ["other", TOKEN]
    return {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


ENDPOINTS = [
    "/api/routing/queues",
    "/api/routing/queues/{queue}",
    "/api/routing/statistics",
    "/api/routing/workers/{ana}/activity",
]


# ---------------------------------------------------------------- access


@pytest.mark.parametrize("path", ENDPOINTS)
def test_anonymous_requests_are_refused_with_a_json_403(client, support, path):
    response = client.get(path.format(**support))

    assert response.status_code == 403
    assert response.json() == {
        "status": 403,
        "message": "Sign in as staff or send a bearer token.",
    }


@pytest.mark.parametrize("path", ENDPOINTS)
def test_an_agent_who_is_not_staff_is_refused(client, agent, support, path):
    client.force_login(agent)

    assert client.get(path.format(**support)).status_code == 403


@pytest.mark.parametrize("path", ENDPOINTS)
def test_staff_may_read_every_endpoint(staff_client, support, path):
    assert staff_client.get(path.format(**support)).status_code == 200


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_bearer_token_from_the_settings_opens_every_endpoint(
    client, support, token, path
):
    assert client.get(path.format(**support), **token).status_code == 200


@pytest.mark.parametrize(
    "header",
    [f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer ", "Bearer", TOKEN],
    ids=["wrong-token", "wrong-scheme", "empty-token", "no-token", "no-scheme"],
)
def test_anything_but_a_listed_bearer_token_is_refused(client, support, token, header):
    response = client.get("/api/routing/queues", HTTP_AUTHORIZATION=header)

    assert response.status_code == 403


def test_an_empty_token_is_refused_when_none_is_configured(client, support, settings):
    settings.SWITCHBOARD_API_TOKENS = []

    response = client.get("/api/routing/queues", HTTP_AUTHORIZATION="Bearer ")

    assert response.status_code == 403


def test_the_api_only_reads(staff_client, support):
    assert staff_client.post("/api/routing/queues").status_code == 405


# ---------------------------------------------------------------- queues


def test_the_queue_list_has_each_queue_and_the_workspace(staff_client, support):
    body = staff_client.get("/api/routing/queues").json()

    assert [q["queue_name"] for q in body["queues"]] == ["Support"]
    assert body["overall"]["queue_name"] is None
    assert body["overall"]["tasks_by_status"]["assigned"] == 1


def test_one_queue_as_json(staff_client, support):
    body = staff_client.get(f"/api/routing/queues/{support['queue']}").json()

    assert body == {
        "queue_id": support["queue"],
        "queue_name": "Support",
        "tasks_by_status": {"pending": 0, "reserved": 0, "assigned": 1, "wrapping": 0},
        "tasks_by_priority": {"0": 1},
        "total_tasks": 1,
        "longest_task_waiting_age": 0,
        "total_available_workers": 0,
        "total_eligible_workers": 1,
        "activity_statistics": {
            "Available": 0,
            "Break": 1,
            "Offline": 0,
            "Unavailable": 0,
        },
    }


def test_an_unknown_queue_is_a_json_404(staff_client, support):
    response = staff_client.get("/api/routing/queues/999")

    assert response.status_code == 404
    assert response.json() == {"status": 404, "message": "No queue 999."}


# ---------------------------------------------------------------- statistics


def test_statistics_over_a_window_as_json(staff_client, support):
    response = staff_client.get(
        "/api/routing/statistics",
        {"start": iso(0), "end": iso(100), "queue": support["queue"], "split": "20"},
    )

    body = response.json()
    assert (body["start"], body["end"], body["queue_id"]) == (
        iso(0),
        iso(100),
        support["queue"],
    )
    assert (body["tasks_created"], body["tasks_canceled"]) == (2, 1)
    assert body["reservations_accepted"] == 1
    assert body["avg_task_acceptance_time"] == 12.0
    assert body["wait_duration_until_canceled"] == {
        "avg": 40.0,
        "min": 40.0,
        "max": 40.0,
        "total": 40.0,
    }
    assert body["split_by_wait_time"] == {
        "accepted": {"20": {"below": 1, "above": 0}},
        "canceled": {"20": {"below": 0, "above": 1}},
    }


def test_the_window_defaults_to_the_last_24_hours(staff_client, support, moment):
    moment.at(24 * 3600 + 15)

    body = staff_client.get("/api/routing/statistics").json()

    assert (body["start"], body["end"]) == (iso(15), iso(24 * 3600 + 15))
    assert body["tasks_created"] == 1  # the first, at 0, is outside
    assert list(body["split_by_wait_time"]["accepted"]) == ["30", "60", "120"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"start": "yesterday"}, "start"),
        ({"end": "2025-13-40T00:00:00Z"}, "end"),
        ({"start": iso(50), "end": iso(50)}, "end"),
        ({"start": iso(50), "end": iso(10)}, "end"),
        ({"queue": "Support"}, "queue"),
        ({"queue": "999"}, "queue"),
        ({"split": "30,a"}, "split"),
        ({"split": "-5"}, "split"),
        ({"split": ""}, "split"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(staff_client, support, query, parameter):
    response = staff_client.get("/api/routing/statistics", query)

    assert response.status_code == 400
    body = response.json()
    assert (body["status"], body["parameter"]) == (400, parameter)
    assert body["message"].startswith(parameter)


@pytest.mark.parametrize(
    "start",
    ["2025-03-03T10:00:00+01:00", "2025-03-03T10:00:00 01:00", "2025-03-03T10:00:00"],
    ids=["offset", "unencoded-plus", "server-time-zone"],
)
def test_times_may_carry_an_offset_or_none(staff_client, support, settings, start):
    settings.TIME_ZONE = "Europe/Madrid"  # UTC+1 in March, before summer time

    body = staff_client.get(
        "/api/routing/statistics", {"start": start, "end": iso(100)}
    ).json()

    assert body["start"] == iso(0)


# ---------------------------------------------------------------- workers


def test_a_workers_activity_durations_as_json(staff_client, support, moment):
    moment.at(110)
    path = f"/api/routing/workers/{support['ana']}/activity"

    body = staff_client.get(path, {"start": iso(50), "end": iso(200)}).json()

    assert body == {
        "worker_id": support["ana"],
        "start": iso(50),
        "end": iso(200),
        "activities": {
            "Available": 0.0,
            "Break": 60.0,
            "Offline": 0.0,
            "Unavailable": 0.0,
        },
    }


def test_an_unknown_worker_is_a_json_404(staff_client, support):
    response = staff_client.get("/api/routing/workers/999/activity")

    assert response.status_code == 404
    assert response.json() == {"status": 404, "message": "No worker 999."}


def test_a_bad_worker_window_is_a_400(staff_client, support):
    path = f"/api/routing/workers/{support['ana']}/activity"

    response = staff_client.get(path, {"start": "soon"})

    assert response.status_code == 400
    assert response.json()["parameter"] == "start"
