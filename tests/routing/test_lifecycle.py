"""The routing engine through its services: tasks, reservations, workers, sweep."""

from datetime import timedelta
from typing import Any

import pytest

from routing import services
from routing.models import Event, Reservation, Task, Worker
from tests.routing.center import (
    T0,
    accept,
    fresh,
    hire,
    later,
    log,
    new_task,
    offer_to,
    offers,
    single_step,
    workflow,
)

# ---------------------------------------------------------------- task lifecycle


def test_a_task_is_offered_to_an_available_worker_of_its_queue(center):
    hire("ana", "es")

    task = new_task()

    assert (task.status, task.queue.name, task.filter_name) == (
        "reserved",
        "Spanish",
        "Spanish",
    )
    assert offers(task) == [("ana", "pending")]
    expected = ["task.created", "workflow.entered", "workflow.target-matched"]
    expected += ["task-queue.entered", "reservation.created"]
    assert log(task) == expected


def test_a_task_nobody_can_take_waits_pending_in_its_queue(center):
    hire("ben", "en")

    task = new_task()

    assert (task.status, task.queue.name) == ("pending", "Spanish")
    assert offers(task) == []


def test_accept_wrapup_and_complete_walk_the_task_to_completed(center):
    ana = hire("ana", "es")
    task = new_task()

    center.advance(3)
    accept(task)
    assigned = fresh(task)
    center.advance(60)
    services.wrapup_task(task_id=task.pk)
    wrapping = fresh(task)
    center.advance(5)
    services.complete_task(task_id=task.pk)

    assert (assigned.status, assigned.assigned_at) == (
        "assigned",
        T0 + timedelta(seconds=3),
    )
    assert wrapping.status == "wrapping"
    assert fresh(task).status == "completed"
    assert fresh(task).ended_at == center.now
    assert offers(task) == [("ana", "completed")]
    assert Worker.objects.get(pk=ana.pk).last_task_ended_at == center.now
    assert log(task)[4:] == [
        "reservation.created",
        "reservation.accepted",
        "task.wrapup",
        "reservation.wrapup",
        "task.completed",
        "reservation.completed",
    ]


def test_an_assigned_task_may_complete_without_wrapping_up(center):
    hire("ana", "es")
    task = new_task()
    accept(task)

    services.complete_task(task_id=task.pk)

    assert fresh(task).status == "completed"
    assert "task.wrapup" not in log(task)


def test_canceling_a_pending_task_records_the_reason(center):
    task = new_task()

    services.cancel_task(task_id=task.pk)

    assert (fresh(task).status, fresh(task).reason) == (
        "canceled",
        "Canceled by request",
    )
    canceled = Event.objects.get(task=task, type="task.canceled")
    assert canceled.data == {"reason": "Canceled by request"}


def test_canceling_a_reserved_task_cancels_its_offer(center):
    hire("ana", "es")
    task = new_task()

    services.cancel_task(task_id=task.pk, reason="Customer left")

    assert (fresh(task).status, fresh(task).reason) == ("canceled", "Customer left")
    assert offers(task) == [("ana", "canceled")]
    assert log(task)[-2:] == ["reservation.canceled", "task.canceled"]


# Each state is reached the way the server reaches it, with ana taking Spanish tasks
# and nobody taking English ones.
def pending() -> Task:
    return new_task(attributes={"language": "en"})


def reserved() -> Task:
    return new_task()


def assigned() -> Task:
    task = reserved()
    accept(task)
    return task


def wrapping() -> Task:
    task = assigned()
    return services.wrapup_task(task_id=task.pk)


def completed() -> Task:
    task = assigned()
    return services.complete_task(task_id=task.pk)


def canceled() -> Task:
    return services.cancel_task(task_id=pending().pk)


STATES = {
    "pending": pending,
    "reserved": reserved,
    "assigned": assigned,
    "wrapping": wrapping,
    "completed": completed,
    "canceled": canceled,
}
ACTIONS = {
    "complete": lambda t: services.complete_task(task_id=t.pk),
    "wrapup": lambda t: services.wrapup_task(task_id=t.pk),
    "cancel": lambda t: services.cancel_task(task_id=t.pk),
    "transfer": lambda t: services.transfer_task(task_id=t.pk, queue="Everyone"),
}
ILLEGAL = [
    ("pending", "complete"),
    ("reserved", "complete"),
    ("canceled", "complete"),
    ("pending", "wrapup"),
    ("reserved", "wrapup"),
    ("completed", "wrapup"),
    ("canceled", "wrapup"),
    ("assigned", "cancel"),
    ("wrapping", "cancel"),
    ("completed", "cancel"),
    ("pending", "transfer"),
    ("reserved", "transfer"),
    ("completed", "transfer"),
    ("canceled", "transfer"),
]


@pytest.mark.parametrize(("state", "action"), ILLEGAL, ids=map(" ".join, ILLEGAL))
def test_an_illegal_task_transition_raises_and_changes_nothing(center, state, action):
    hire("ana", "es")
    task = STATES[state]()
    before = (log(), offers(task))

    with pytest.raises(services.InvalidTransition):
        ACTIONS[action](task)

    assert fresh(task).status == state
    assert (log(), offers(task)) == before


@pytest.mark.parametrize("state", list(STATES))
def test_every_state_is_reached_as_named(center, state):
    hire("ana", "es")

    assert fresh(STATES[state]()).status == state


ENDINGS = {
    "rejected": lambda clock, r: services.reject_reservation(reservation_id=r.pk),
    "timeout": lambda clock, r: later(clock, 20),
    "canceled": lambda clock, r: services.cancel_task(task_id=r.task_id),
    "accepted": lambda clock, r: services.accept_reservation(reservation_id=r.pk),
}
TOO_LATE = [
    ("rejected", "accept"),
    ("timeout", "accept"),
    ("canceled", "accept"),
    ("accepted", "reject"),
    ("timeout", "reject"),
    ("canceled", "reject"),
]


@pytest.mark.parametrize(("state", "action"), TOO_LATE, ids=map(" ".join, TOO_LATE))
def test_an_offer_that_ended_cannot_be_answered(center, state, action):
    hire("ana", "es")
    reservation = offer_to("ana", new_task())
    ENDINGS[state](center, reservation)
    answer = getattr(services, f"{action}_reservation")

    with pytest.raises(services.InvalidTransition):
        answer(reservation_id=reservation.pk)

    assert Reservation.objects.get(pk=reservation.pk).status == state


def only_offer(task: Task) -> int:
    return task.reservations.get().pk


def rejected() -> Task:
    task = reserved()
    services.reject_reservation(reservation_id=only_offer(task))
    return task


AGAIN = {
    "accept": (
        assigned,
        lambda t: services.accept_reservation(reservation_id=only_offer(t)),
    ),
    "reject": (
        rejected,
        lambda t: services.reject_reservation(reservation_id=only_offer(t)),
    ),
    "wrapup": (wrapping, ACTIONS["wrapup"]),
    "complete": (completed, ACTIONS["complete"]),
    "cancel": (canceled, ACTIONS["cancel"]),
}


@pytest.mark.parametrize("action", list(AGAIN))
def test_doing_the_same_thing_twice_is_a_noop_the_second_time(center, action):
    hire("ana", "es")
    done_once, again = AGAIN[action]
    task = done_once()
    before = (fresh(task).status, offers(task), log())

    again(task)

    assert (fresh(task).status, offers(task), log()) == before


# ---------------------------------------------------------------- reservations


def test_a_rejected_task_goes_to_someone_else_never_back_to_the_rejecter(center):
    ana = hire("ana", "es")
    hire("bea", "es")
    task = new_task()

    services.reject_reservation(reservation_id=offer_to("ana", task).pk)
    after_first = offers(task)
    services.reject_reservation(reservation_id=offer_to("bea", task).pk)
    services.set_worker_activity(worker_id=ana.pk, activity="Offline")
    services.set_worker_activity(worker_id=ana.pk, activity="Available")
    later(center, 5)

    assert after_first == [("ana", "rejected"), ("bea", "pending")]
    assert offers(task) == [("ana", "rejected"), ("bea", "rejected")]
    assert fresh(task).status == "pending"


def test_an_unanswered_offer_times_out_and_the_worker_goes_offline(center):
    ana = hire("ana", "es")
    hire("bea", "es")
    task = new_task()
    reservation = offer_to("ana", task)

    later(center, 19)
    early = services.time_out_reservation(reservation_id=reservation.pk)
    still = offers(task)
    later(center, 1)

    assert (early, still) == (False, [("ana", "pending")])
    assert offers(task) == [("ana", "timeout"), ("bea", "pending")]
    ana.refresh_from_db()
    assert (ana.activity.name, ana.activity_changed_at) == ("Offline", center.now)
    assert log()[-3:] == [
        "reservation.timeout",
        "worker.activity.update",
        "reservation.created",
    ]
    moved = Event.objects.filter(type="worker.activity.update").last()
    assert (moved.worker, moved.data) == (ana, {"activity": "Offline"})


def test_the_worker_keeps_an_offer_made_before_changing_activity(center):
    ana = hire("ana", "es")
    task = new_task()

    services.set_worker_activity(worker_id=ana.pk, activity="Break")
    second = new_task()
    accept(task)

    assert fresh(task).status == "assigned"
    assert offers(second) == []


def test_a_worker_becoming_available_is_offered_waiting_work(center):
    ana = hire("ana", "es", activity="Offline")
    task = new_task()

    services.set_worker_activity(worker_id=ana.pk, activity="Available")

    assert offers(task) == [("ana", "pending")]


def test_several_workers_are_offered_at_once_and_the_first_accept_wins(center):
    workflow("Team", {"task_routing": {"default_filter": {"queue": "Trio"}}})
    for name in ("ana", "bea", "cy", "dan"):
        hire(name, team="trio")
    task = new_task("Team")
    offered = offers(task)

    accept(task, "bea")

    assert offered == [("ana", "pending"), ("bea", "pending"), ("cy", "pending")]
    assert offers(task) == [
        ("ana", "rescinded"),
        ("bea", "accepted"),
        ("cy", "rescinded"),
    ]
    assert fresh(task).status == "assigned"
    assert log(task)[-3:] == [
        "reservation.accepted",
        "reservation.rescinded",
        "reservation.rescinded",
    ]
    with pytest.raises(services.InvalidTransition):
        services.accept_reservation(reservation_id=task.reservations.first().pk)


def test_when_one_of_several_offers_is_rejected_another_worker_is_offered(center):
    workflow("Team", {"task_routing": {"default_filter": {"queue": "Trio"}}})
    for name in ("ana", "bea", "cy", "dan"):
        hire(name, team="trio")
    task = new_task("Team")

    services.reject_reservation(reservation_id=offer_to("bea", task).pk)

    assert fresh(task).status == "reserved"
    assert offers(task) == [
        ("ana", "pending"),
        ("bea", "rejected"),
        ("cy", "pending"),
        ("dan", "pending"),
    ]


# ---------------------------------------------------------------- deadlines


def test_a_task_past_its_ttl_is_canceled_by_the_sweep(center):
    task = new_task(timeout=60)

    later(center, 59)
    alive = fresh(task).status
    later(center, 1)

    assert alive == "pending"
    assert (fresh(task).status, fresh(task).reason) == (
        "canceled",
        "Task TTL Exceeded",
    )
    assert Event.objects.get(task=task, type="task.canceled").data == {
        "reason": "Task TTL Exceeded"
    }


def test_a_reserved_task_past_its_ttl_is_canceled_with_its_offer(center):
    hire("ana", "es")
    task = new_task(timeout=10)

    later(center, 10)

    assert fresh(task).reason == "Task TTL Exceeded"
    assert offers(task) == [("ana", "canceled")]


def test_an_assigned_task_outlives_its_ttl(center):
    hire("ana", "es")
    task = new_task(timeout=10)
    accept(task)

    later(center, 3600)

    assert fresh(task).status == "assigned"


def test_a_task_escalates_when_its_step_times_out_on_its_age(center):
    hire("ben", "en")
    task = new_task(priority=1)

    later(center, 29)
    waiting = (fresh(task).queue.name, fresh(task).routing_priority)
    later(center, 1)

    assert waiting == ("Spanish", 1)
    escalated = fresh(task)
    assert (escalated.queue.name, escalated.target_index) == ("Everyone", 1)
    assert (escalated.routing_priority, escalated.status) == (10, "reserved")
    assert log(task)[-4:] == [
        "task-queue.timeout",
        "workflow.target-matched",
        "task-queue.moved",
        "reservation.created",
    ]
    matched = Event.objects.filter(type="workflow.target-matched").last()
    assert matched.data == {"filter": "Spanish", "target": 1}


def test_a_task_whose_last_step_times_out_is_canceled_by_the_workflow(center):
    single_step("Brief", queue="Spanish", timeout=30)
    task = new_task("Brief")

    later(center, 30)

    assert (fresh(task).status, fresh(task).reason) == ("canceled", "Workflow Timeout")
    assert log(task)[-2:] == ["workflow.timeout", "task.canceled"]


def test_no_routing_deadline_is_left_in_the_past_after_a_sweep(center):
    # A deadline in the past makes routesim's clock stand still forever.
    workflow(
        "Default",
        {"task_routing": {"default_filter": {"queue": "English", "timeout": 10}}},
    )
    new_task("Default")

    later(center, 15)

    deadline = services.next_deadline()
    assert deadline is None or deadline > center.now


# ---------------------------------------------------------------- capacity


def test_a_worker_gets_no_more_tasks_than_their_capacity(center):
    hire("ana", "es", capacity={"chat": 2})
    tasks = [new_task() for _ in range(3)]

    taken = [offers(t) for t in tasks]
    accept(tasks[0])
    services.complete_task(task_id=tasks[0].pk)

    assert taken == [[("ana", "pending")], [("ana", "pending")], []]
    assert offers(tasks[2]) == [("ana", "pending")]


def test_capacity_zero_means_no_task_on_that_channel(center):
    hire("ana", "es", capacity={"chat": 0, "sms": 1})

    assert offers(new_task()) == []
    assert offers(new_task(channel="sms")) == [("ana", "pending")]


def test_capacity_counts_per_channel(center):
    hire("ana", "es", capacity={"chat": 1, "sms": 1})

    chat, sms, more_chat = new_task(), new_task(channel="sms"), new_task()

    assert [offers(t) for t in (chat, sms, more_chat)] == [
        [("ana", "pending")],
        [("ana", "pending")],
        [],
    ]


def test_wrapping_up_still_holds_the_workers_capacity(center):
    hire("ana", "es")
    task = wrapping()
    waiting = new_task()
    held = offers(waiting)

    services.complete_task(task_id=task.pk)

    assert held == []
    assert offers(waiting) == [("ana", "pending")]


def test_a_channel_switched_off_gets_no_offers_until_switched_on(center):
    ana = hire("ana", "es")
    services.set_worker_capacity(
        worker_id=ana.pk, channel="chat", capacity=1, available=False
    )
    task = new_task()
    off = offers(task)

    services.set_worker_capacity(
        worker_id=ana.pk, channel="chat", capacity=1, available=True
    )

    assert off == []
    assert offers(task) == [("ana", "pending")]
    assert log().count("worker.channel.availability.update") == 2


def test_raising_capacity_offers_waiting_work(center):
    ana = hire("ana", "es")
    new_task()
    second = new_task()

    services.set_worker_capacity(worker_id=ana.pk, channel="chat", capacity=2)

    assert offers(second) == [("ana", "pending")]
    changed = Event.objects.get(type="worker.capacity.update")
    assert changed.data == {"channel": "chat", "capacity": 2}


# ---------------------------------------------------------------- re-evaluation


def test_new_attributes_move_a_waiting_task_to_another_filter(center):
    hire("ana", "es")
    task = new_task(attributes={"language": "en"})
    before = (fresh(task).filter_name, fresh(task).queue.name)

    services.update_task_attributes(task_id=task.pk, attributes={"language": "es"})

    assert before == ("English", "English")
    after = fresh(task)
    assert (after.filter_name, after.queue.name, after.attributes) == (
        "Spanish",
        "Spanish",
        {"language": "es"},
    )
    assert offers(task) == [("ana", "pending")]
    updated = log(task).index("task.updated")
    assert "workflow.target-matched" in log(task)[updated:]


def test_new_worker_attributes_make_the_worker_eligible(center):
    ana = hire("ana", "en")
    task = new_task()

    services.set_worker_attributes(worker_id=ana.pk, attributes={"languages": ["es"]})

    assert offers(task) == [("ana", "pending")]
    assert "worker.attributes.update" in log()


# ---------------------------------------------------------------- choosing workers


def test_by_default_the_worker_unoccupied_longest_is_offered(center):
    hire("ana", "es")
    center.advance(5)
    hire("ben", "es")
    first = new_task()
    accept(first)
    center.advance(5)
    services.complete_task(task_id=first.pk)

    second = new_task()

    assert offers(first) == [("ana", "completed")]
    assert offers(second) == [("ben", "pending")]


def test_a_worker_holding_fewer_tasks_is_preferred(center):
    hire("ana", "es", capacity={"chat": 2})
    center.advance(5)
    hire("ben", "es", capacity={"chat": 2})
    first = new_task()

    second = new_task()

    assert offers(first) == [("ana", "pending")]
    assert offers(second) == [("ben", "pending")]


def test_order_by_picks_the_highest_level_over_the_longest_idle(center):
    single_step("Senior", queue="Everyone", order_by="worker.level DESC")
    hire("ana", level=1)
    hire("ben", level=3)
    hire("cy")

    assert offers(new_task("Senior")) == [("ben", "pending")]


def test_a_target_expression_compares_worker_and_task(center):
    single_step("Levels", queue="Everyone", expression="worker.level >= task.level")
    hire("ana", level=1)
    hire("ben", level=3)

    fit = new_task("Levels", attributes={"level": 2})
    too_hard = new_task("Levels", attributes={"level": 5})

    assert offers(fit) == [("ben", "pending")]
    assert (offers(too_hard), fresh(too_hard).status) == ([], "pending")


@pytest.mark.parametrize("form", ["agent", "task.agent"])
def test_known_worker_routing_offers_only_the_named_worker(center, form):
    # "task.agent" is how TaskRouter's own documentation writes it.
    single_step("Known", queue="Everyone", known_worker_friendly_name=form)
    hire("ana")
    hire("ben")
    hire("cy", activity="Offline")

    to_ben = new_task("Known", attributes={"agent": "ben"})
    to_cy = new_task("Known", attributes={"agent": "cy"})

    assert offers(to_ben) == [("ben", "pending")]
    assert offers(to_cy) == []


def test_skip_if_moves_on_when_nobody_is_available_on_entering_the_step(center):
    workflow("Skip", skipping_workflow())
    hire("ben", "en")

    task = new_task("Skip")

    assert (fresh(task).queue.name, fresh(task).skipped) == ("Everyone", [[0, 0]])
    assert offers(task) == [("ben", "pending")]
    assert log(task).index("workflow.skipped") < log(task).index("reservation.created")


def test_skip_if_does_not_fire_while_someone_is_available(center):
    workflow("Skip", skipping_workflow())
    hire("ana", "es")
    hire("ben", "en")

    task = new_task("Skip")

    assert (fresh(task).queue.name, fresh(task).skipped) == ("Spanish", [])
    assert offers(task) == [("ana", "pending")]


def test_skip_if_is_checked_only_on_entering_the_step(center):
    workflow("Skip", skipping_workflow())
    hire("ana", "es")
    hire("ben", "en")
    task = new_task("Skip")

    services.reject_reservation(reservation_id=offer_to("ana", task).pk)

    assert (fresh(task).queue.name, fresh(task).target_index) == ("Spanish", 0)
    assert "workflow.skipped" not in log(task)


def skipping_workflow() -> dict[str, Any]:
    targets = [
        {"queue": "Spanish", "timeout": 60, "skip_if": "workers.available == 0"},
        {"queue": "Everyone"},
    ]
    return {
        "task_routing": {
            "filters": [
                {"filter_friendly_name": "S", "expression": "1==1", "targets": targets}
            ]
        }
    }


# ---------------------------------------------------------------- task order


def test_a_higher_priority_task_is_offered_first(center):
    ana = hire("ana", "es", activity="Offline")
    low = new_task(priority=1)
    center.advance(1)
    high = new_task(priority=5)

    services.set_worker_activity(worker_id=ana.pk, activity="Available")

    assert (offers(low), offers(high)) == ([], [("ana", "pending")])


@pytest.mark.parametrize(
    ("flow", "taken"), [("Support", 0), ("Newest", 2)], ids=["FIFO", "LIFO"]
)
def test_equal_priorities_go_by_the_queues_order(center, flow, taken):
    workflow("Newest", {"task_routing": {"default_filter": {"queue": "Newest"}}})
    ana = hire("ana", "es", activity="Offline")
    tasks = []
    for _ in range(3):
        tasks.append(new_task(flow))
        center.advance(1)

    services.set_worker_activity(worker_id=ana.pk, activity="Available")

    assert [bool(offers(t)) for t in tasks] == [i == taken for i in range(3)]


# ---------------------------------------------------------------- transfers


@pytest.mark.parametrize("to", [{"queue": "English"}, {"worker": "ben"}])
def test_a_transfer_completes_the_original_once_accepted(
    center, django_capture_on_commit_callbacks, to
):
    hire("ana", "es")
    hire("ben", "en")
    hire("cy", "en")
    original = assigned()

    copy = services.transfer_task(task_id=original.pk, note="billing", **to)
    offered = offers(copy)
    held = fresh(original).status
    with django_capture_on_commit_callbacks(execute=True):
        accept(copy, "ben")

    assert (offered, held) == ([("ben", "pending")], "assigned")
    assert copy.transferred_from_id == original.pk
    assert copy.attributes == {
        "language": "es",
        "transfer": {"from_task": original.pk, "note": "billing"},
    }
    assert fresh(copy).status == "assigned"
    assert fresh(original).status == "completed"
    assert offers(original) == [("ana", "completed")]


def test_a_transfer_nobody_takes_leaves_the_original_with_its_agent(center):
    hire("ana", "es")
    original = assigned()

    copy = services.transfer_task(task_id=original.pk, queue="English")
    services.cancel_task(task_id=copy.pk)

    assert fresh(original).status == "assigned"
    assert fresh(copy).status == "canceled"


@pytest.mark.parametrize(
    ("to", "message"),
    [
        ({"queue": "Nowhere"}, "no queue named 'Nowhere'"),
        ({"worker": "nobody"}, "no worker named 'nobody'"),
        ({}, "one of the two"),
        ({"queue": "English", "worker": "ana"}, "one of the two"),
    ],
)
def test_a_transfer_names_what_is_wrong(center, to, message):
    hire("ana", "es")
    original = assigned()

    with pytest.raises(services.RoutingError, match=message):
        services.transfer_task(task_id=original.pk, **to)


# ---------------------------------------------------------------- the event log

TASKROUTER_EVENTS = {
    "task.created",
    "task.updated",
    "task.canceled",
    "task.wrapup",
    "task.completed",
    "task-queue.entered",
    "task-queue.timeout",
    "task-queue.moved",
    "workflow.entered",
    "workflow.target-matched",
    "workflow.timeout",
    "workflow.skipped",
    "reservation.created",
    "reservation.accepted",
    "reservation.rejected",
    "reservation.timeout",
    "reservation.canceled",
    "reservation.rescinded",
    "reservation.wrapup",
    "reservation.completed",
    "worker.activity.update",
    "worker.attributes.update",
    "worker.capacity.update",
    "worker.channel.availability.update",
}


def test_every_event_is_named_as_taskrouter_names_it(center):
    ana = hire("ana", "es", capacity={"chat": 2})
    hire("ben", "en")
    for name in ("cy", "dan"):
        hire(name, team="trio")
    workflow("Team", {"task_routing": {"default_filter": {"queue": "Trio"}}})
    workflow("Skip", skipping_workflow())
    single_step("Brief", queue="English", timeout=30)
    first, second = new_task(), new_task(attributes={"language": "en"})
    services.reject_reservation(reservation_id=offer_to("ben", second).pk)
    services.complete_task(task_id=wrapping().pk)
    accept(new_task("Team"), "cy")
    later(center, 20)
    skipped = new_task("Skip")
    services.cancel_task(task_id=skipped.pk)
    services.update_task_attributes(task_id=second.pk, attributes={"vip": True})
    services.set_worker_attributes(worker_id=ana.pk, attributes={"languages": []})
    services.set_worker_capacity(
        worker_id=ana.pk, channel="sms", capacity=2, available=False
    )
    new_task("Brief")
    later(center, 30)

    assert set(log()) == TASKROUTER_EVENTS
    assert fresh(first).queue.name == "Everyone"
    times = list(Event.objects.order_by("pk").values_list("created_at", flat=True))
    assert times == sorted(times)
