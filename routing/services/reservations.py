"""Reservations: accept, reject, time out. The first accept wins; the task's other
offers are rescinded."""

from datetime import datetime

from django.db import transaction

from routing import clock
from routing.events import record
from routing.models import (
    Reservation,
    ReservationStatus,
    Task,
    TaskStatus,
    Workspace,
)
from routing.services.dispatch import dispatch_one
from routing.services.loop import dispatch_for_workers
from routing.services.tasks import InvalidTransition, RoutingError, _end_reservation
from routing.services.workers import move_worker


def _locked(reservation_id: int) -> tuple[Reservation, Task]:
    """Lock the reservation's task, then the reservation: always in that order.

    Two workers answering two offers of one task at once then queue on the task
    instead of deadlocking, and the second is told it is too late. Only the rows
    themselves are locked (`of=("self",)`), never the shared workflow or worker.
    """
    task_id = (
        Reservation.objects.filter(pk=reservation_id)
        .values_list("task_id", flat=True)
        .first()
    )
    if task_id is None:
        raise RoutingError(f"no reservation {reservation_id}")
    task = (
        Task.objects.select_for_update(of=("self",))
        .select_related("workflow")
        .get(pk=task_id)
    )
    reservation = (
        Reservation.objects.select_for_update(of=("self",))
        .select_related("worker", "task")
        .get(pk=reservation_id)
    )
    return reservation, task


def accept_reservation(*, reservation_id: int) -> Reservation:
    """Pending → accepted: the worker takes the task; its other offers are rescinded.

    Accepting twice is a no-op; accepting a reservation that timed out, was
    rejected, rescinded or canceled raises InvalidTransition.
    """
    now = clock.now()
    with transaction.atomic():
        reservation, task = _locked(reservation_id)
        if reservation.status == ReservationStatus.ACCEPTED:
            return reservation
        if reservation.status != ReservationStatus.PENDING:
            raise InvalidTransition(
                f"reservation {reservation_id} is {reservation.status}: "
                "too late to accept"
            )
        if reservation.expires_at <= now:
            # The sweep has not got to it yet; it has timed out all the same.
            raise InvalidTransition(f"reservation {reservation_id} has timed out")
        reservation.status, reservation.updated_at = ReservationStatus.ACCEPTED, now
        reservation.save(update_fields=["status", "updated_at"])
        task.status, task.assigned_at, task.updated_at = TaskStatus.ASSIGNED, now, now
        task.save(update_fields=["status", "assigned_at", "updated_at"])
        record(
            "reservation.accepted",
            task=task,
            worker=reservation.worker,
            reservation=reservation,
        )
        rescinded = list(task.reservations.filter(status=ReservationStatus.PENDING))
        for other in rescinded:
            _end_reservation(other, ReservationStatus.RESCINDED, now)
        _finish_transfer(task, now)
    if rescinded:  # the other workers are free for other tasks again
        dispatch_for_workers([other.worker_id for other in rescinded])
    return reservation


def _finish_transfer(task: Task, now: datetime) -> None:
    """The transferred task was taken: the original's agent is released."""
    original = task.transferred_from_id
    if original is None:
        return
    from routing.services.tasks import complete_task

    transaction.on_commit(lambda: complete_task(task_id=original))


def _release(reservation: Reservation, task: Task, status: str, now: datetime) -> None:
    _end_reservation(reservation, status, now)
    still_offered = task.reservations.filter(status=ReservationStatus.PENDING).exists()
    if task.status == TaskStatus.RESERVED and not still_offered:
        task.status, task.updated_at = TaskStatus.PENDING, now
        task.save(update_fields=["status", "updated_at"])


def reject_reservation(*, reservation_id: int) -> Reservation:
    """Pending → rejected; the task is routed again (not to this worker).

    Rejecting twice is a no-op; rejecting after it ended raises InvalidTransition.
    """
    now = clock.now()
    with transaction.atomic():
        reservation, task = _locked(reservation_id)
        if reservation.status == ReservationStatus.REJECTED:
            return reservation
        if reservation.status != ReservationStatus.PENDING:
            raise InvalidTransition(
                f"reservation {reservation_id} is {reservation.status}: "
                "too late to reject"
            )
        _release(reservation, task, ReservationStatus.REJECTED, now)
    dispatch_one(task.pk)  # to someone else
    dispatch_for_workers([reservation.worker_id])
    return reservation


def time_out_reservation(*, reservation_id: int) -> bool:
    """A pending offer past its deadline: timed out, and the worker moved to the
    workspace's timeout activity. False (a no-op) if it is no longer pending."""
    now = clock.now()
    with transaction.atomic():
        reservation, task = _locked(reservation_id)
        if (
            reservation.status != ReservationStatus.PENDING
            or reservation.expires_at > now
        ):
            return False
        _release(reservation, task, ReservationStatus.TIMEOUT, now)
        workspace = Workspace.objects.select_related("timeout_activity").first()
        if workspace is not None:
            move_worker(reservation.worker, workspace.timeout_activity, now)
    dispatch_one(task.pk)  # to someone else
    dispatch_for_workers([reservation.worker_id])  # if the timeout activity is one
    return True
