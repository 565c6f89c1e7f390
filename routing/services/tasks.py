"""Task lifecycle: create, update, cancel, wrap up, complete, transfer.

Each transition checks the task's state machine, changes the row under its lock,
appends an event, and lets dispatch offer whatever became possible.
"""

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from routing import clock
from routing.events import record
from routing.models import (
    HELD_TASK,
    LIVE_TASK,
    Reservation,
    ReservationStatus,
    Task,
    TaskChannel,
    TaskQueue,
    TaskStatus,
    Worker,
    Workflow,
)
from routing.services.dispatch import dispatch_one
from routing.services.loop import dispatch_for_workers

MAX_TIMEOUT = 1209600
CANCELED_BY_REQUEST = "Canceled by request"
TRANSFER_WITHDRAWN = "Transfer withdrawn: the original task was completed"

# The task state machine: which statuses each status may move to.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    TaskStatus.PENDING: (TaskStatus.RESERVED, TaskStatus.CANCELED),
    TaskStatus.RESERVED: (TaskStatus.PENDING, TaskStatus.ASSIGNED, TaskStatus.CANCELED),
    TaskStatus.ASSIGNED: (TaskStatus.WRAPPING, TaskStatus.COMPLETED),
    TaskStatus.WRAPPING: (TaskStatus.COMPLETED,),
    TaskStatus.COMPLETED: (),
    TaskStatus.CANCELED: (),
}


class RoutingError(ValueError):
    """A request routing cannot carry out; the text names what is wrong."""


class InvalidTransition(RoutingError):
    pass


def get_workflow(*, name: str) -> Workflow:
    workflow = Workflow.objects.filter(name=name).first()
    if workflow is None:
        raise RoutingError(f"no workflow named {name!r}")
    return workflow


def get_task_channel(*, unique_name: str) -> TaskChannel:
    channel = TaskChannel.objects.filter(unique_name=unique_name).first()
    if channel is None:
        raise RoutingError(f"no task channel named {unique_name!r}")
    return channel


def _check(value: int, name: str, low: int, high: int) -> int:
    if not isinstance(value, int) or not low <= value <= high:
        raise RoutingError(
            f"{name} must be a whole number from {low} to {high}: {value!r}"
        )
    return value


def create_task(
    *,
    workflow: str,
    channel: str,
    attributes: Mapping[str, Any],
    priority: int = 0,
    timeout: int = 86400,
) -> Task:
    """Create a task in `workflow` on task channel `channel` and route it.

    Raises RoutingError naming an unknown workflow or channel, or a priority or
    timeout out of TaskRouter's range.
    """
    _check(priority, "priority", 0, 2**31 - 1)
    _check(timeout, "timeout", 1, MAX_TIMEOUT)
    if not isinstance(attributes, Mapping):
        raise RoutingError("attributes must be a JSON object")
    now = clock.now()
    with transaction.atomic():
        task = Task.objects.create(
            workflow=get_workflow(name=workflow),
            channel=get_task_channel(unique_name=channel),
            attributes=dict(attributes),
            priority=priority,
            routing_priority=priority,
            timeout=timeout,
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(seconds=timeout),
        )
        record("task.created", task=task)
    dispatch_one(task.pk)
    return Task.objects.get(pk=task.pk)


def _locked(task_id: int) -> Task:
    task = (
        Task.objects.select_for_update(of=("self",))
        .select_related("workflow")
        .filter(pk=task_id)
    )
    found = task.first()
    if found is None:
        raise RoutingError(f"no task {task_id}")
    return found


def _move(task: Task, status: str, now: datetime, **changes: Any) -> None:
    if status not in TRANSITIONS[task.status]:
        raise InvalidTransition(
            f"task {task.pk} is {task.status}: it cannot become {status}"
        )
    task.status, task.updated_at = status, now
    for name, value in changes.items():
        setattr(task, name, value)
    task.save()


def update_task_attributes(*, task_id: int, attributes: Mapping[str, Any]) -> Task:
    """Replace a task's attributes; a waiting task is routed again.

    Offers already made are canceled: they were made for the old attributes.
    """
    now = clock.now()
    with transaction.atomic():
        task = _locked(task_id)
        task.attributes, task.updated_at = dict(attributes), now
        live = task.status in LIVE_TASK
        if live:
            pending = task.reservations.filter(status=ReservationStatus.PENDING)
            for reservation in pending:
                _end_reservation(reservation, ReservationStatus.CANCELED, now)
            task.status, task.skipped = TaskStatus.PENDING, []
        task.save()
        record("task.updated", task=task)
    if live:
        dispatch_one(task_id)
    return Task.objects.get(pk=task_id)


def cancel_locked(task: Task, now: datetime, reason: str) -> list[int]:
    """Cancel a locked task and its pending offers (no dispatch); returns the
    workers whose offers were canceled, who have room again."""
    _move(task, TaskStatus.CANCELED, now, reason=reason, ended_at=now)
    freed = []
    for reservation in task.reservations.filter(status=ReservationStatus.PENDING):
        _end_reservation(reservation, ReservationStatus.CANCELED, now)
        freed.append(reservation.worker_id)
    record("task.canceled", task=task, reason=reason)
    return freed


def _end_reservation(reservation: Reservation, status: str, now: datetime) -> None:
    reservation.status, reservation.updated_at = status, now
    reservation.save(update_fields=["status", "updated_at"])
    record(
        f"reservation.{status}",
        task=reservation.task,
        worker=reservation.worker,
        reservation=reservation,
    )


def cancel_task(*, task_id: int, reason: str = CANCELED_BY_REQUEST) -> Task:
    """Cancel a pending or reserved task. Raises InvalidTransition once assigned.

    A no-op for a task already canceled.
    """
    freed: list[int] = []
    with transaction.atomic():
        task = _locked(task_id)
        if task.status != TaskStatus.CANCELED:
            freed = cancel_locked(task, clock.now(), reason)
    dispatch_for_workers(freed)
    return task


def wrapup_task(*, task_id: int) -> Task:
    """Assigned → wrapping: the conversation is over, the agent writes notes."""
    now = clock.now()
    with transaction.atomic():
        task = _locked(task_id)
        if task.status == TaskStatus.WRAPPING:
            return task
        _move(task, TaskStatus.WRAPPING, now)
        reservation = _accepted(task)
        reservation.status, reservation.updated_at = ReservationStatus.WRAPPING, now
        reservation.save(update_fields=["status", "updated_at"])
        record("task.wrapup", task=task, worker=reservation.worker)
        record(
            "reservation.wrapup",
            task=task,
            worker=reservation.worker,
            reservation=reservation,
        )
    return task


def _accepted(task: Task) -> Reservation:
    return task.reservations.select_related("worker").get(
        status__in=(ReservationStatus.ACCEPTED, ReservationStatus.WRAPPING)
    )


def complete_task(*, task_id: int) -> Task:
    """Assigned or wrapping → completed; frees the worker's capacity.

    A no-op for a task already completed.
    """
    now = clock.now()
    with transaction.atomic():
        task = _locked(task_id)
        if task.status == TaskStatus.COMPLETED:
            return task
        _move(task, TaskStatus.COMPLETED, now, ended_at=now)
        reservation = _accepted(task)
        reservation.status, reservation.updated_at = ReservationStatus.COMPLETED, now
        reservation.save(update_fields=["status", "updated_at"])
        worker = reservation.worker
        Worker.objects.filter(pk=worker.pk).update(last_task_ended_at=now)
        record("task.completed", task=task, worker=worker)
        record(
            "reservation.completed", task=task, worker=worker, reservation=reservation
        )
        # A transfer still looking for someone is withdrawn: the work is done.
        transfers = Task.objects.select_for_update(of=("self",)).filter(
            transferred_from=task, status__in=LIVE_TASK
        )
        freed = [worker.pk]
        for transfer in transfers:
            freed += cancel_locked(transfer, now, TRANSFER_WITHDRAWN)
    dispatch_for_workers(freed)
    return task


def move_task(*, task_id: int, queue: str) -> Task:
    """Move a waiting task straight to `queue` (a supervisor's decision): its
    pending offers are canceled and it is offered from that queue only."""
    target = TaskQueue.objects.filter(name=queue).first()
    if target is None:
        raise RoutingError(f"no queue named {queue!r}")
    now = clock.now()
    with transaction.atomic():
        task = _locked(task_id)
        if task.status not in LIVE_TASK:
            raise InvalidTransition(f"task {task_id} is {task.status}: not waiting")
        for reservation in task.reservations.filter(status=ReservationStatus.PENDING):
            _end_reservation(reservation, ReservationStatus.CANCELED, now)
        previous = task.queue
        task.status, task.direct_queue, task.queue = TaskStatus.PENDING, target, target
        task.updated_at = now
        task.save()
        record(
            "task-queue.moved",
            task=task,
            queue=target,
            previous=previous.name if previous else "",
        )
    dispatch_one(task_id)
    return Task.objects.get(pk=task_id)


def transfer_task(
    *,
    task_id: int,
    queue: str | None = None,
    worker: str | None = None,
    note: str = "",
    timeout: int = 300,
) -> Task:
    """A new task for the same work, routed straight to `queue` or `worker`.

    The original stays with its agent until the new one is accepted (then it is
    completed); if nobody accepts within `timeout` seconds the new one is
    canceled and the original simply goes on.
    """
    _check(timeout, "timeout", 1, MAX_TIMEOUT)
    if (queue is None) == (worker is None):
        raise RoutingError("transfer to a queue or to a worker, one of the two")
    target_queue = TaskQueue.objects.filter(name=queue).first() if queue else None
    target_worker = (
        Worker.objects.filter(name__iexact=worker).first() if worker else None
    )
    if queue and target_queue is None:
        raise RoutingError(f"no queue named {queue!r}")
    if worker and target_worker is None:
        raise RoutingError(f"no worker named {worker!r}")
    now = clock.now()
    with transaction.atomic():
        original = _locked(task_id)
        if original.status not in HELD_TASK:
            raise InvalidTransition(f"task {task_id} is {original.status}: not held")
        attributes = {
            **original.attributes,
            "transfer": {"from_task": original.pk, "note": note},
        }
        task = Task.objects.create(
            workflow=original.workflow,
            channel=original.channel,
            attributes=attributes,
            priority=original.priority,
            routing_priority=original.routing_priority,
            timeout=timeout,
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(seconds=timeout),
            direct_queue=target_queue,
            direct_worker=target_worker,
            transferred_from=original,
        )
        record("task.created", task=task, transfer_from=original.pk)
    dispatch_one(task.pk)
    return Task.objects.get(pk=task.pk)
