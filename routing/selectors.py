"""Routing's read side: TaskRouter's statistics, for the admin, the console and the API.

Three families, as specs/taskrouter.md ("Statistics") lists them:
- real time, per queue and overall (`get_queue_realtime`, `list_queue_realtime`);
- cumulative over a time window, from the event log (`get_cumulative`);
- per worker, the time spent in each activity (`get_worker_activity_durations`).

A queue's members are the workers its `target_workers` expression matches. Worker
counts are small, so expressions are evaluated in Python over one snapshot of the
workers; every other figure comes from one grouped query per resource, whatever the
number of queues. Times are seconds; "now" is `routing.clock.now()`.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, F, Min, OuterRef, Subquery
from django.db.models.functions import Coalesce

from routing import clock, expressions
from routing.models import (
    BUSY_RESERVATION,
    HELD_TASK,
    LIVE_TASK,
    Activity,
    Event,
    Reservation,
    Task,
    TaskQueue,
    Worker,
    WorkerChannel,
)

# Tasks a queue holds: waiting for a worker or being worked on.
QUEUE_STATUSES = (*LIVE_TASK, *HELD_TASK)
DEFAULT_SPLIT_THRESHOLDS = (30, 60, 120)

# Cumulative counters and the event each one counts.
COUNTED_EVENTS = {
    "tasks_created": "task.created",
    "tasks_canceled": "task.canceled",
    "tasks_completed": "task.completed",
    "reservations_created": "reservation.created",
    "reservations_accepted": "reservation.accepted",
    "reservations_rejected": "reservation.rejected",
    "reservations_timed_out": "reservation.timeout",
    "reservations_canceled": "reservation.canceled",
    "reservations_rescinded": "reservation.rescinded",
}
# The events that end a task's wait, and the name of the wait they end.
WAIT_ENDS = {"reservation.accepted": "accepted", "task.canceled": "canceled"}


# ---------------------------------------------------------------- real time


@dataclass(frozen=True)
class _WorkerState:
    attributes: dict[str, Any]
    activity: str
    available: bool  # in an available activity
    has_room: bool  # some switched-on channel with load below capacity


def _worker_states() -> list[_WorkerState]:
    """Every worker, in two queries: the workers, and who has room somewhere."""
    load = (
        Reservation.objects.filter(
            worker_id=OuterRef("worker_id"),
            channel_id=OuterRef("channel_id"),
            status__in=BUSY_RESERVATION,
        )
        .order_by()
        .values("worker_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    with_room = set(
        WorkerChannel.objects.filter(available=True, capacity__gt=0)
        .annotate(load=Coalesce(Subquery(load), 0))
        .filter(capacity__gt=F("load"))
        .values_list("worker_id", flat=True)
    )
    workers = Worker.objects.select_related("activity").only(
        "attributes", "activity__name", "activity__available"
    )
    return [
        _WorkerState(
            attributes=worker.attributes if isinstance(worker.attributes, dict) else {},
            activity=worker.activity.name,
            available=worker.activity.available,
            has_room=worker.pk in with_room,
        )
        for worker in workers
    ]


def _members(queue: TaskQueue, workers: list[_WorkerState]) -> list[_WorkerState]:
    """The workers `queue.target_workers` matches; none if it does not parse (the
    admin refuses such an expression; statistics must not fail on an old one)."""
    return _members_or_none(queue, workers) or []


def _members_or_none(
    queue: TaskQueue, workers: list[_WorkerState]
) -> list[_WorkerState] | None:
    try:
        expression = expressions.parse(queue.target_workers)
    except expressions.ExpressionError:
        return None
    return [worker for worker in workers if expression.evaluate(worker.attributes)]


def count_queue_members(
    queues: Iterable[TaskQueue],
) -> dict[int, tuple[int, int] | None]:
    """Per queue id: its eligible and available workers (TaskRouter's
    total_eligible_workers and total_available_workers), or None when its
    expression does not parse. Two queries for all the queues."""
    workers = _worker_states()
    counts: dict[int, tuple[int, int] | None] = {}
    for queue in queues:
        members = _members_or_none(queue, workers)
        counts[queue.pk] = (
            None
            if members is None
            else (len(members), sum(worker.available for worker in members))
        )
    return counts


def _task_groups(queue_id: int | None) -> list[dict[str, Any]]:
    """Queued tasks counted by queue, status and priority, with the oldest's time."""
    tasks = Task.objects.filter(status__in=QUEUE_STATUSES)
    if queue_id is not None:
        tasks = tasks.filter(queue_id=queue_id)
    return list(
        tasks.order_by()
        .values("queue_id", "status", "routing_priority")
        .annotate(n=Count("pk"), oldest=Min("created_at"))
    )


def _realtime(
    queue: TaskQueue | None,
    groups: Iterable[dict[str, Any]],
    members: list[_WorkerState],
    activities: Sequence[str],
    now: datetime,
) -> dict[str, Any]:
    groups = list(groups)
    by_status = dict.fromkeys(QUEUE_STATUSES, 0)
    by_priority: dict[int, int] = {}
    for group in groups:
        by_status[group["status"]] += group["n"]
        priority = group["routing_priority"]
        by_priority[priority] = by_priority.get(priority, 0) + group["n"]
    oldest = min(
        (group["oldest"] for group in groups if group["status"] in LIVE_TASK),
        default=None,
    )
    per_activity = dict.fromkeys(activities, 0)
    for worker in members:
        per_activity[worker.activity] = per_activity.get(worker.activity, 0) + 1
    available = [worker for worker in members if worker.available]
    return {
        "queue_id": queue.pk if queue else None,
        "queue_name": queue.name if queue else None,
        "tasks_by_status": by_status,
        "tasks_by_priority": {
            str(priority): n
            for priority, n in sorted(by_priority.items(), reverse=True)
        },
        "total_tasks": sum(by_status.values()),
        "longest_task_waiting_age": (
            max(0, int((now - oldest).total_seconds())) if oldest else 0
        ),
        "total_available_workers": len(available),
        "total_eligible_workers": len(members),
        "activity_statistics": per_activity,
    }


def get_queue_realtime(*, queue_id: int | None = None) -> dict[str, Any]:
    """Real-time statistics of one queue, or of the whole workspace when None.

    Returns `{"queue_id", "queue_name", "tasks_by_status": {"pending", "reserved",
    "assigned", "wrapping"}, "tasks_by_priority": {"<priority>": n} (highest
    first, the priority the task is routed with), "total_tasks",
    "longest_task_waiting_age" (whole seconds since the oldest pending or reserved
    task was created; 0 when none), "total_available_workers" (members in an
    available activity), "total_eligible_workers" (every member, whatever its
    activity, as TaskRouter counts them),
    "activity_statistics": {"<activity>": members}}`.
    Overall (`queue_id=None`, `queue_id`/`queue_name` null) counts every queued
    task, including ones in no queue (routed to a worker), and every worker.
    Raises TaskQueue.DoesNotExist for an unknown queue.
    """
    queue = TaskQueue.objects.get(pk=queue_id) if queue_id is not None else None
    workers = _worker_states()
    members = workers if queue is None else _members(queue, workers)
    activities = list(Activity.objects.values_list("name", flat=True))
    return _realtime(queue, _task_groups(queue_id), members, activities, clock.now())


def list_queue_realtime() -> list[dict[str, Any]]:
    """`get_queue_realtime` of every queue, by name, in a fixed number of queries."""
    queues = list(TaskQueue.objects.order_by("name"))
    workers = _worker_states()
    activities = list(Activity.objects.values_list("name", flat=True))
    groups: dict[int | None, list[dict[str, Any]]] = {}
    for group in _task_groups(None):
        groups.setdefault(group["queue_id"], []).append(group)
    now = clock.now()
    return [
        _realtime(
            queue, groups.get(queue.pk, []), _members(queue, workers), activities, now
        )
        for queue in queues
    ]


# ---------------------------------------------------------------- cumulative


def _summary(waits: list[float]) -> dict[str, float]:
    if not waits:
        return {"avg": 0.0, "min": 0.0, "max": 0.0, "total": 0.0}
    total = sum(waits)
    return {
        "avg": round(total / len(waits), 3),
        "min": min(waits),
        "max": max(waits),
        "total": total,
    }


def _split(waits: list[float], thresholds: Sequence[int]) -> dict[str, dict[str, int]]:
    """Per threshold, how many waits were within it (`below`, inclusive: answered
    in exactly 30 s meets a 30 s SLA) and how many exceeded it (`above`)."""
    split = {}
    for threshold in thresholds:
        below = sum(wait <= threshold for wait in waits)
        split[str(threshold)] = {"below": below, "above": len(waits) - below}
    return split


def _thresholds(split_thresholds: Iterable[int]) -> list[int]:
    thresholds = sorted(set(split_thresholds))
    if any(isinstance(t, bool) or not isinstance(t, int) or t < 0 for t in thresholds):
        raise ValueError(f"split thresholds must be whole seconds: {thresholds!r}")
    return thresholds


def get_cumulative(
    *,
    start: datetime,
    end: datetime,
    queue_id: int | None = None,
    split_thresholds: Iterable[int] = DEFAULT_SPLIT_THRESHOLDS,
) -> dict[str, Any]:
    """Cumulative statistics over events at `start` <= time < `end`.

    Returns `{"start", "end", "queue_id", <each COUNTED_EVENTS key>: n,
    "avg_task_acceptance_time", "wait_duration_until_accepted" and
    "wait_duration_until_canceled": {"avg", "min", "max", "total"},
    "split_by_wait_time": {"accepted" | "canceled": {"<threshold>": {"below",
    "above"}}}}`, seconds as floats (avg to the millisecond; all 0 when nothing
    happened). A wait runs from the task's creation to its reservation's
    acceptance, or to its cancellation, and belongs to the window the end falls
    in. With `queue_id`, only tasks now in that queue count (the queue they were
    last routed to). Raises ValueError when `end` is not after `start` or a
    threshold is not a non-negative whole number.
    """
    if end <= start:
        raise ValueError("end must be after start")
    thresholds = _thresholds(split_thresholds)
    events = Event.objects.filter(created_at__gte=start, created_at__lt=end)
    if queue_id is not None:
        events = events.filter(task__queue_id=queue_id)
    counts = dict(
        events.filter(type__in=COUNTED_EVENTS.values())
        .order_by()
        .values_list("type")
        .annotate(n=Count("pk"))
    )
    waits: dict[str, list[float]] = {name: [] for name in WAIT_ENDS.values()}
    ends = events.filter(type__in=WAIT_ENDS, task__isnull=False).values_list(
        "type", "created_at", "task__created_at"
    )
    for event_type, ended, created in ends:
        waits[WAIT_ENDS[event_type]].append((ended - created).total_seconds())
    accepted = _summary(waits["accepted"])
    return {
        "start": start,
        "end": end,
        "queue_id": queue_id,
        **{name: counts.get(kind, 0) for name, kind in COUNTED_EVENTS.items()},
        "avg_task_acceptance_time": accepted["avg"],
        "wait_duration_until_accepted": accepted,
        "wait_duration_until_canceled": _summary(waits["canceled"]),
        "split_by_wait_time": {
            name: _split(values, thresholds) for name, values in waits.items()
        },
    }


# ---------------------------------------------------------------- per worker


def get_worker_activity_durations(
    *, worker_id: int, start: datetime, end: datetime
) -> dict[str, float]:
    """Seconds the worker spent in each activity between `start` and `end`.

    Every activity is listed (0.0 when none). Read from `worker.activity.update`
    events: the activity at `start` is the one the last earlier event set; with no
    event at all, the worker's current one since `activity_changed_at` (its
    creation). Time after now is not counted. A worker whose first change falls in
    the window has no recorded activity before it (creating a worker records no
    event), so that stretch is left out rather than guessed.
    Raises Worker.DoesNotExist for an unknown worker.
    """
    worker = Worker.objects.select_related("activity").get(pk=worker_id)
    totals = dict.fromkeys(Activity.objects.values_list("name", flat=True), 0.0)
    end = min(end, clock.now())
    if end <= start:
        return totals
    changes = Event.objects.filter(type="worker.activity.update", worker=worker)
    before = (
        changes.filter(created_at__lte=start)
        .order_by("-created_at", "-pk")
        .values_list("data", flat=True)
        .first()
    )
    during = list(
        changes.filter(created_at__gt=start, created_at__lt=end)
        .order_by("created_at", "pk")
        .values_list("created_at", "data")
    )
    current: str | None = None
    since = start
    if before is not None:
        current = before.get("activity")
    elif not during:
        current = worker.activity.name
        since = max(start, worker.activity_changed_at)
    for changed_at, data in [*during, (end, {})]:
        if current is not None and changed_at > since:
            seconds = (changed_at - since).total_seconds()
            totals[current] = totals.get(current, 0.0) + seconds
        current, since = data.get("activity"), changed_at
    return totals
