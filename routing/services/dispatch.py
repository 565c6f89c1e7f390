"""Placing tasks in their workflow step and offering them to workers.

Correct under concurrency across processes: each task is placed and offered inside
its own transaction holding the task's row lock, and each offer takes the chosen
worker's row lock and counts the worker's load again under it (SELECT ... FOR
UPDATE SKIP LOCKED on PostgreSQL; SQLite serialises writers anyway). So a task is
never reserved beyond its queue's `max_reserved_workers`, a worker never beyond
their capacity, and a task is never assigned twice.
"""

import functools
import json
import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from routing import clock, expressions
from routing.events import record
from routing.models import (
    BUSY_RESERVATION,
    LIVE_TASK,
    Reservation,
    ReservationStatus,
    Task,
    TaskQueue,
    TaskStatus,
    Worker,
    WorkerChannel,
    Workflow,
)
from routing.workflows import (
    Candidate,
    ConfigurationError,
    Routing,
    Step,
    locate,
    order_workers,
    parse_configuration,
    worker_scope,
)

logger = logging.getLogger(__name__)

WORKFLOW_TIMEOUT = "Workflow Timeout"
TTL_EXCEEDED = "Task TTL Exceeded"


def routing_of(workflow: Workflow) -> Routing:
    """The workflow's parsed routing, parsed once per configuration and set of
    queues, and read once per decision (kept on the workflow instance)."""
    routing = getattr(workflow, "_routing", None)
    if routing is None:
        names = tuple(sorted(TaskQueue.objects.values_list("name", flat=True)))
        configuration = json.dumps(workflow.configuration, sort_keys=True)
        routing = workflow._routing = _parse(configuration, names)  # type: ignore[attr-defined]
    return routing


@functools.lru_cache(maxsize=64)
def _parse(configuration: str, queues: tuple[str, ...]) -> Routing:
    return parse_configuration(json.loads(configuration), queues)


def age_of(task: Task, now: datetime) -> float:
    return (now - task.created_at).total_seconds()


def place(task: Task, now: datetime) -> bool:
    """Put a locked task in the workflow step its age calls for; False if canceled.

    Records `workflow.entered`, `workflow.target-matched`, `task-queue.entered` and
    `task-queue.moved` as the step changes; a workflow with no step left cancels the
    task with `workflow.timeout`.
    """
    if task.direct_queue_id or task.direct_worker_id:
        return _place_direct(task, now)
    step = locate(
        routing_of(task.workflow), task.attributes, age_of(task, now), task.skipped
    )
    if step is None:
        record("workflow.timeout", task=task)
        _cancel(task, now, WORKFLOW_TIMEOUT)
        return False
    same = (step.filter_index, step.target_index, step.filter_name) == (
        task.filter_index,
        task.target_index,
        task.filter_name,
    )
    # The same step still counts as new when its queue changed under it (the
    # workflow was edited, the queue deleted): the task moves.
    if same and task.queue is not None and task.queue.name == step.target.queue:
        return True
    _enter_step(task, step, now)
    return True


def _enter_step(task: Task, step: Step, now: datetime) -> None:
    queue = TaskQueue.objects.get(name=step.target.queue)
    first = task.filter_name == ""
    previous = task.queue
    # skip_if is checked only now, on entering the step (see offer()).
    task.just_entered = True  # type: ignore[attr-defined]
    if first:
        record("workflow.entered", task=task)
    elif previous is not None:
        record("task-queue.timeout", task=task, queue=previous)
    task.filter_name, task.filter_index = step.filter_name, step.filter_index
    task.target_index, task.queue = step.target_index, queue
    if step.target.priority is not None:
        task.routing_priority = step.target.priority
    task.target_expires_at = (
        task.created_at + timedelta(seconds=step.ends_at_age)
        if step.ends_at_age is not None
        else None
    )
    task.updated_at = now
    task.save()
    record(
        "workflow.target-matched",
        task=task,
        queue=queue,
        filter=step.filter_name,
        target=step.target_index,
    )
    if previous is not None and previous.pk != queue.pk:
        record("task-queue.moved", task=task, queue=queue, previous=previous.name)
    elif previous is None:
        record("task-queue.entered", task=task, queue=queue)


def _place_direct(task: Task, now: datetime) -> bool:
    if task.queue_id is None and task.direct_queue_id:
        task.queue_id = task.direct_queue_id
        task.updated_at = now
        task.save()
        record("task-queue.entered", task=task, queue=task.queue)
    return True


def _cancel(task: Task, now: datetime, reason: str) -> None:
    from routing.services.tasks import cancel_locked

    cancel_locked(task, now, reason)


def current_target(task: Task) -> Any:
    """The routing step's target for a placed task (None for direct routing)."""
    if task.direct_queue_id or task.direct_worker_id or task.filter_name == "":
        return None
    routing = routing_of(task.workflow)
    if task.filter_index is None:
        return routing.default.targets[0] if routing.default else None
    return routing.filters[task.filter_index].targets[task.target_index or 0]


# -- offers ------------------------------------------------------------------------


def load_of_row() -> Any:
    """A worker channel's load (busy reservations on it), for `.annotate()`."""
    busy = (
        Reservation.objects.filter(
            worker_id=OuterRef("worker_id"),
            channel_id=OuterRef("channel_id"),
            status__in=BUSY_RESERVATION,
        )
        .values("worker_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(busy), 0)


CANDIDATE_FIELDS = (
    "worker_id",
    "capacity",
    "worker__name",
    "worker__sid",
    "worker__attributes",
    "worker__activity_changed_at",
    "worker__last_task_ended_at",
)


def candidates(task: Task, target: Any, now: datetime) -> list[Candidate]:
    """Workers who could take `task` now: available, with room on its channel,
    members of its queue, matching the step's expression, not already offered it."""
    channels = (
        WorkerChannel.objects.filter(
            channel_id=task.channel_id,
            available=True,
            capacity__gt=0,
            worker__activity__available=True,
        )
        .annotate(load=load_of_row())
        .filter(load__lt=F("capacity"))
        .select_related("worker")
        .only(*CANDIDATE_FIELDS)
    )
    if task.direct_worker_id:
        channels = channels.filter(worker_id=task.direct_worker_id)
    excluded = set(
        task.reservations.filter(
            Q(status=ReservationStatus.PENDING) | Q(status=ReservationStatus.REJECTED)
        ).values_list("worker_id", flat=True)
    )
    if task.transferred_from_id:
        # A transfer is for someone else than the agent who made it.
        excluded |= set(
            Reservation.objects.filter(
                task_id=task.transferred_from_id,
                status__in=(ReservationStatus.ACCEPTED, ReservationStatus.WRAPPING),
            ).values_list("worker_id", flat=True)
        )
    queue = task.queue
    found = []
    for row in channels:
        worker = row.worker
        if worker.pk in excluded or not _eligible(task, queue, target, worker):
            continue
        load = row.load
        since = max(
            worker.activity_changed_at,
            worker.last_task_ended_at or worker.activity_changed_at,
        )
        found.append(Candidate(worker.pk, worker.name, worker.attributes, load, since))
    return found


def _eligible(task: Task, queue: TaskQueue | None, target: Any, worker: Worker) -> bool:
    if task.direct_worker_id:
        return True
    if queue is None or not expressions.matches(
        queue.target_workers, worker.attributes
    ):
        return False
    if target is None:
        return True
    if target.expression and not expressions.matches(
        target.expression, worker_scope(task.attributes, worker.attributes)
    ):
        return False
    known = target.known_worker_friendly_name or target.known_worker_sid
    if known:
        # TaskRouter writes the attribute as `task.agent_name`.
        wanted = _path(task.attributes, known.removeprefix("task."))
        field = worker.name if target.known_worker_friendly_name else worker.sid
        return wanted is not None and str(wanted) == field
    return True


def _path(attributes: Any, dotted: str) -> Any:
    value = attributes
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def offer(task: Task, now: datetime) -> int:
    """Reserve a locked, placed task for as many workers as its queue allows."""
    queue = task.queue
    limit = queue.max_reserved_workers if queue else 1
    pending = task.reservations.filter(status=ReservationStatus.PENDING).count()
    if pending >= limit or task.status not in LIVE_TASK:
        return 0
    target = current_target(task)
    ordered = order_workers(
        candidates(task, target, now), target.order_by if target else ""
    )
    made = 0
    for candidate in ordered:
        if pending + made >= limit:
            break
        if _reserve(task, candidate.id, now):
            made += 1
    if made and task.status == TaskStatus.PENDING:
        task.status, task.updated_at = TaskStatus.RESERVED, now
        task.save(update_fields=["status", "updated_at"])
    entering = getattr(task, "just_entered", False)
    if not made and not pending and target is not None and target.skip_if and entering:
        _maybe_skip(task, target, now)
    return made


def _reserve(task: Task, worker_id: int, now: datetime) -> bool:
    """Offer `task` to a worker, rechecking their load under the worker's lock."""
    worker = (
        Worker.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("activity")
        .filter(pk=worker_id)
        .first()
    )
    if worker is None or not worker.activity.available:
        return False
    channel = WorkerChannel.objects.filter(
        worker=worker, channel_id=task.channel_id, available=True
    ).first()
    load = Reservation.objects.filter(
        worker=worker, channel_id=task.channel_id, status__in=BUSY_RESERVATION
    ).count()
    if channel is None or load >= channel.capacity:
        return False
    reservation = Reservation.objects.create(
        task=task,
        worker=worker,
        channel_id=task.channel_id,
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(seconds=task.workflow.task_reservation_timeout),
    )
    record("reservation.created", task=task, worker=worker, reservation=reservation)
    return True


def _maybe_skip(task: Task, target: Any, now: datetime) -> None:
    available = len(candidates(task, None, now))
    scope = {"workers": {"available": available}, "task": task.attributes}
    if expressions.matches(target.skip_if, scope):
        task.skipped = [*task.skipped, [task.filter_index, task.target_index]]
        task.save(update_fields=["skipped"])
        record("workflow.skipped", task=task, queue=task.queue)
        if place(task, now):
            offer(task, now)


# -- the loop ----------------------------------------------------------------------


def dispatch_one(task_id: int) -> int:
    """Place and offer one task; a workflow that cannot route leaves it waiting."""
    try:
        return _dispatch_one(task_id)
    except ConfigurationError as exc:
        logger.error(
            "task %s cannot be routed: its workflow is broken: %s", task_id, exc
        )
        return 0


def _dispatch_one(task_id: int) -> int:
    now = clock.now()
    with transaction.atomic():
        task = (
            # Lock the task row only: the queue is an outer join, which
            # PostgreSQL will not lock.
            Task.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("workflow", "queue")
            .filter(pk=task_id, status__in=LIVE_TASK)
            .first()
        )
        if task is None or not place(task, now):
            return 0
        return offer(task, now)
