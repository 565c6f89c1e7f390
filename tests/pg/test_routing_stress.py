"""Routing under a storm of processes, on PostgreSQL.

Several OS processes at once create tasks, accept and reject offers, wrap up and
complete work, take workers on and offline, sweep and dispatch. Afterwards the
database must still tell one consistent story: no task offered beyond its queue's
`max_reserved_workers`, no worker beyond their capacity, no task taken twice, every
task's status agreeing with its reservations, and every reservation's history in
the event log agreeing with its status; replaying that log, none of it happened at
any moment in between either. Every racer's error other than InvalidTransition (a
deadlock, say) fails the test too.
"""

import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from functools import partial

import pytest

from routing import services
from routing.models import (
    BUSY_RESERVATION,
    HELD_TASK,
    Event,
    Reservation,
    ReservationStatus,
    Task,
    TaskChannel,
    TaskQueue,
    TaskStatus,
    Worker,
    WorkerChannel,
    Workflow,
)
from tests.pg.racing import ROW_LOCKS, race

pytestmark = pytest.mark.django_db(transaction=True)

RACERS = 5
ITERATIONS = 40
WALL_CLOCK = 20.0  # seconds a racer may spend, whatever it has left to do
WORKERS = 10
WORKFLOW = "Support"
# Short deadlines, so that sweeps time offers out, move Spanish tasks on to
# everyone and cancel tasks during the storm.
OFFER_TIMEOUT = 2
SPANISH_WAIT = 2
SHORT_TTL = 3
# So that the storm cannot pass by doing nothing (measured: about 200 operations
# overlapping another racer's, and 25 tasks assigned).
MIN_OVERLAPPING = RACERS * ITERATIONS // 4
MIN_ASSIGNED = 10

SUPPORT = {
    "task_routing": {
        "filters": [
            {
                "filter_friendly_name": "Spanish",
                "expression": "language == 'es'",
                "targets": [
                    {"queue": "Spanish", "timeout": SPANISH_WAIT},
                    {"queue": "Everyone"},
                ],
            }
        ],
        "default_filter": {"queue": "Everyone"},
    }
}

ACCEPTED = ReservationStatus.ACCEPTED
PENDING = ReservationStatus.PENDING
# Reservations that took the task: at most one per task, ever.
HELD_RESERVATION = (ACCEPTED, ReservationStatus.WRAPPING, ReservationStatus.COMPLETED)
# What each reservation.<status> event does to its task's offers and its worker.
WITHDRAWN = ("rejected", "timeout", "canceled", "rescinded")
ENDS_OFFER = ("accepted", *WITHDRAWN)
FREES_WORKER = (*WITHDRAWN, "completed")
AFTER_TAKEN = ("rescinded", "wrapup", "completed")


@pytest.fixture
def contact_center() -> None:
    """Queues Everyone (two offers at once) and Spanish, a workflow that gives a
    Spanish task SPANISH_WAIT seconds with Spanish speakers before everyone, and
    ten chat workers of capacity 1 to 3, half of them available."""
    services.ensure_workspace()
    TaskChannel.objects.create(unique_name="chat")
    TaskQueue.objects.create(name="Everyone", max_reserved_workers=2)
    TaskQueue.objects.create(name="Spanish", target_workers="languages HAS 'es'")
    Workflow.objects.create(
        name=WORKFLOW, configuration=SUPPORT, task_reservation_timeout=OFFER_TIMEOUT
    )
    for n in range(WORKERS):
        services.create_worker(
            name=f"agent-{n}",
            attributes={"languages": ["es", "en"] if n % 3 == 0 else ["en"]},
            activity="Available" if n % 2 == 0 else "Offline",
            capacity={"chat": 1 + n % 3},
        )


# -- what a racer does ---------------------------------------------------------------


def create(rng: random.Random) -> str:
    services.create_task(
        workflow=WORKFLOW,
        channel="chat",
        attributes={"language": rng.choice(["es", "en"])},
        priority=rng.randrange(3),
        timeout=rng.choice([SHORT_TTL, 86400, 86400]),
    )
    return "created"


def answer(rng: random.Random) -> str:
    """Accept or reject one of the oldest offers pending a moment ago: all racers
    pick from the same few, so that they collide."""
    pending = list(
        Reservation.objects.filter(status=PENDING).values_list("pk", flat=True)
    )
    if not pending:
        return "nothing to answer"
    reservation_id = rng.choice(pending[:4])
    if rng.random() < 0.75:
        services.accept_reservation(reservation_id=reservation_id)
        return "accepted"
    services.reject_reservation(reservation_id=reservation_id)
    return "rejected"


def finish(rng: random.Random) -> str:
    """Wrap up or complete a task that was held a moment ago."""
    held = list(Task.objects.filter(status__in=HELD_TASK).values_list("pk", "status"))
    if not held:
        return "nothing to finish"
    task_id, status = rng.choice(held)
    if status == TaskStatus.ASSIGNED and rng.random() < 0.5:
        services.wrapup_task(task_id=task_id)
        return "wrapped up"
    services.complete_task(task_id=task_id)
    return "completed"


def toggle(rng: random.Random) -> str:
    worker_id = rng.choice(list(Worker.objects.values_list("pk", flat=True)))
    activity = rng.choice(["Available", "Offline"])
    services.set_worker_activity(worker_id=worker_id, activity=activity)
    return f"went {activity.lower()}"


def sweep(rng: random.Random) -> str:
    services.sweep()
    return "swept"


def dispatch(rng: random.Random) -> str:
    services.dispatch()
    return "dispatched"


OPERATIONS: list[tuple[Callable[[random.Random], str], int]] = [
    (create, 3),
    (answer, 5),
    (finish, 2),
    (toggle, 2),
    (sweep, 1),
    (dispatch, 1),
]


def storm(seed: int) -> dict:
    """One racer: ITERATIONS operations drawn with `seed`, within WALL_CLOCK; what
    each did, the errors, and when each ran (racing closes the connections).

    The first always creates a task, so that every racer meets the others at the
    gate on the task table.
    """
    rng = random.Random(seed)
    operations, weights = zip(*OPERATIONS, strict=True)
    tally: Counter[str] = Counter()
    errors: list[str] = []
    spans = []
    deadline = time.monotonic() + WALL_CLOCK
    for step in range(ITERATIONS):
        if time.monotonic() > deadline:
            break
        operation = create if step == 0 else rng.choices(operations, weights)[0]
        start = time.monotonic()
        tally[attempt(errors, operation.__name__, partial(operation, rng))] += 1
        spans.append((seed, start, time.monotonic()))
    return {"tally": tally, "errors": errors, "spans": spans}


def attempt(errors: list[str], name: str, operation: Callable[[], str]) -> str:
    """What `operation()` did; "conflict" if another racer got there first.

    Any other error is recorded and the storm goes on, so that one failure does
    not hide the state the storm leaves behind.
    """
    try:
        return operation()
    except services.InvalidTransition:
        return "conflict"
    except Exception as exc:
        errors.append(f"{name} raised {describe(exc)}")
        return "error"


def describe(exc: Exception) -> str:
    """The error's first line and PostgreSQL's CONTEXT, without row addresses, so
    that the same failure reads the same each time."""
    lines = str(exc).splitlines() or [""]
    context = [line for line in lines if line.startswith("CONTEXT:")]
    text = " ".join([f"{type(exc).__name__}: {lines[0]}", *context])
    return re.sub(r"tuple \(\d+,\d+\)", "a row", text)


def overlapping(spans: list[tuple[int, float, float]]) -> int:
    """How many operations ran while another racer's was under way."""
    return sum(
        any(other != racer and s < end and start < e for other, s, e in spans)
        for racer, start, end in spans
    )


# -- what must hold afterwards -------------------------------------------------------


def reservations_by_task() -> dict[int, list[str]]:
    found: dict[int, list[str]] = defaultdict(list)
    for task_id, status in Reservation.objects.values_list("task_id", "status"):
        found[task_id].append(status)
    return found


def offers_beyond_queue_limits() -> list[str]:
    offers = reservations_by_task()
    found = []
    for task in Task.objects.select_related("queue"):
        limit = task.queue.max_reserved_workers if task.queue else 1
        if (pending := offers[task.pk].count(PENDING)) > limit:
            found.append(f"task {task.pk} in {task.queue}: {pending} pending offers")
    return found


def workers_beyond_capacity() -> list[str]:
    load = Counter(
        Reservation.objects.filter(status__in=BUSY_RESERVATION).values_list(
            "worker_id", "channel_id"
        )
    )
    return [
        f"{row.worker} on {row.channel}: {load[row.worker_id, row.channel_id]} busy "
        f"reservations, capacity {row.capacity}"
        for row in WorkerChannel.objects.select_related("worker", "channel")
        if load[row.worker_id, row.channel_id] > row.capacity
    ]


def tasks_taken_twice() -> list[str]:
    return [
        f"task {task_id} has {len(held)} reservations that took it: {held}"
        for task_id, statuses in reservations_by_task().items()
        if len(held := [s for s in statuses if s in HELD_RESERVATION]) > 1
    ]


# Per task status: whether it has pending offers, and the one reservation holding it.
AGREEING_RESERVATIONS: dict[str, tuple[bool, str | None]] = {
    TaskStatus.PENDING: (False, None),
    TaskStatus.RESERVED: (True, None),
    TaskStatus.ASSIGNED: (False, ACCEPTED),
    TaskStatus.WRAPPING: (False, ReservationStatus.WRAPPING),
    TaskStatus.COMPLETED: (False, ReservationStatus.COMPLETED),
    TaskStatus.CANCELED: (False, None),
}


def statuses_disagreeing_with_reservations() -> list[str]:
    offers = reservations_by_task()
    found = []
    for task_id, status in Task.objects.values_list("pk", "status"):
        statuses = offers[task_id]
        offered, holder = AGREEING_RESERVATIONS[status]
        held = [s for s in statuses if s in HELD_RESERVATION]
        if (PENDING in statuses) != offered or held != ([holder] if holder else []):
            found.append(f"task {task_id} is {status}, its reservations: {statuses}")
    return found


# The events each reservation's status implies, in order.
EVENT_HISTORIES: dict[str, list[list[str]]] = {
    PENDING: [["created"]],
    ACCEPTED: [["created", "accepted"]],
    ReservationStatus.WRAPPING: [["created", "accepted", "wrapup"]],
    ReservationStatus.COMPLETED: [
        ["created", "accepted", "completed"],
        ["created", "accepted", "wrapup", "completed"],
    ],
    **{withdrawn: [["created", withdrawn]] for withdrawn in WITHDRAWN},
}


def histories_disagreeing_with_events() -> list[str]:
    """One reservation.created per reservation, one reservation.accepted per
    reservation that took its task, and nothing else out of step."""
    history: dict[int | None, list[str]] = defaultdict(list)
    events = Event.objects.filter(type__startswith="reservation.").order_by("pk")
    for reservation_id, event_type in events.values_list("reservation_id", "type"):
        history[reservation_id].append(event_type.removeprefix("reservation."))
    found = (
        [f"events of no reservation: {history.pop(None)}"] if None in history else []
    )
    for reservation_id, status in Reservation.objects.values_list("pk", "status"):
        seen = history.pop(reservation_id, [])
        if seen not in EVENT_HISTORIES[status]:
            found.append(f"reservation {reservation_id} is {status}, events: {seen}")
    found += [
        f"events of reservation {pk}, which is gone: {seen}"
        for pk, seen in history.items()
    ]
    return found


def offers_out_of_bounds_over_time() -> list[str]:
    """Replays the log: at no moment a task offered beyond its queue's limit (or at
    all once taken), nor a worker beyond capacity. A task's events are written
    under its lock and a worker's new offers under the worker's, so their ids keep
    the order that matters: an end an offer relied on was logged before it. (One
    channel here, so a worker's capacity is their only WorkerChannel's.)"""
    limits = dict(TaskQueue.objects.values_list("pk", "max_reserved_workers"))
    capacity = dict(WorkerChannel.objects.values_list("worker_id", "capacity"))
    queue_of: dict[int, int] = {}
    offered: Counter[int] = Counter()
    busy: Counter[int] = Counter()
    taken: set[int] = set()
    found = []
    log = Event.objects.order_by("pk")
    for event_type, task, worker, queue in log.values_list(
        "type", "task_id", "worker_id", "queue_id"
    ):
        kind = event_type.removeprefix("reservation.")
        if event_type in ("task-queue.entered", "task-queue.moved"):
            queue_of[task] = queue
        elif kind == "created":
            offered[task] += 1
            busy[worker] += 1
            if offered[task] > limits[queue_of[task]] or task in taken:
                found.append(f"task {task} offered {offered[task]} times at once")
            if busy[worker] > capacity[worker]:
                found.append(f"worker {worker} given {busy[worker]} tasks at once")
        elif event_type.startswith("reservation."):
            if task in taken and kind not in AFTER_TAKEN:
                found.append(f"task {task} had an offer {kind} after it was taken")
            offered[task] -= kind in ENDS_OFFER
            busy[worker] -= kind in FREES_WORKER
            if kind == "accepted":
                taken.add(task)
    return found


INVARIANTS = (
    offers_out_of_bounds_over_time,
    offers_beyond_queue_limits,
    workers_beyond_capacity,
    tasks_taken_twice,
    statuses_disagreeing_with_reservations,
    histories_disagreeing_with_events,
)


def violations() -> list[str]:
    """Every broken invariant, one line each, under the name of its check."""
    return [f"{check.__name__}: {line}" for check in INVARIANTS for line in check()]


def report(problems: list[str], tally: Counter) -> str:
    """Each distinct problem once, with how often it happened."""
    lines = "\n".join(
        f"  - {count} x {problem}" if count > 1 else f"  - {problem}"
        for problem, count in Counter(problems).items()
    )
    return f"{len(problems)} problem(s) after the storm {dict(tally)}:\n{lines}"


# -- the tests -----------------------------------------------------------------------


def test_a_storm_of_racing_processes_leaves_routing_consistent(contact_center):
    outcomes = race(
        storm, [(seed,) for seed in range(RACERS)], gate=Task, timeout=WALL_CLOCK * 2
    )
    errors = [error for outcome in outcomes for error in outcome["errors"]]
    # Whatever the racers left waiting, offered once more.
    attempt(errors, "final dispatch", partial(dispatch, random.Random()))

    tally: Counter[str] = sum((outcome["tally"] for outcome in outcomes), Counter())
    raced = overlapping([span for outcome in outcomes for span in outcome["spans"]])
    assigned = Reservation.objects.filter(status__in=HELD_RESERVATION).count()
    problems = errors + violations()
    if raced < MIN_OVERLAPPING:
        problems.append(f"only {raced} operations overlapped another racer's")
    if assigned < MIN_ASSIGNED:
        problems.append(f"only {assigned} tasks were ever assigned")
    if problems:
        pytest.fail(report(problems, tally), pytrace=False)


def answer_offer(action: str, reservation_id: int) -> str:
    """What a worker hears back: the offer is theirs, declined, or gone already."""
    try:
        if action == "accept":
            services.accept_reservation(reservation_id=reservation_id)
            return "accepted"
        services.reject_reservation(reservation_id=reservation_id)
        return "rejected"
    except services.InvalidTransition:
        return "too late"


@pytest.mark.parametrize(
    ("first", "second", "outcomes"),
    [
        ("accept", "accept", [["accepted", "too late"]]),
        ("accept", "reject", [["accepted", "too late"], ["accepted", "rejected"]]),
    ],
    ids=["both accept", "one accepts, one rejects"],
)
def test_two_workers_answering_both_offers_of_one_task_at_once_are_told_in_turn(
    contact_center, first, second, outcomes
):
    task = services.create_task(
        workflow=WORKFLOW, channel="chat", attributes={"language": "en"}
    )
    offers = list(task.reservations.values_list("pk", flat=True))
    assert len(offers) == 2

    # Both answer in the same instant: whoever locks the task first decides, and
    # the other is answered in turn (too late, or a plain rejection).
    heard = race(
        answer_offer,
        [(first, offers[0]), (second, offers[1])],
        gate=Task,
        gate_mode=ROW_LOCKS,
    )

    assert sorted(heard) in outcomes
    task.refresh_from_db()
    assert task.status == TaskStatus.ASSIGNED
    assert task.reservations.filter(status=ACCEPTED).count() == 1
