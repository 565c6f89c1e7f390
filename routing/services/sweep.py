"""Beat's timer for routing: every deadline is a column, read here through an index.

A late sweep fixes things up in the order they fell due; running it twice, or in
two processes at once, does each thing once.
"""

from datetime import datetime

from django.db import transaction

from routing import clock
from routing.models import LIVE_TASK, Reservation, ReservationStatus, Task
from routing.services.dispatch import TTL_EXCEEDED, dispatch_one
from routing.services.loop import dispatch_for_workers
from routing.services.reservations import time_out_reservation
from routing.services.tasks import cancel_locked


def next_deadline():
    """The earliest routing deadline still ahead (for routesim's virtual clock)."""
    candidates = [
        Reservation.objects.filter(status=ReservationStatus.PENDING)
        .order_by("expires_at")
        .values_list("expires_at", flat=True)
        .first(),
        Task.objects.filter(status__in=LIVE_TASK)
        .order_by("expires_at")
        .values_list("expires_at", flat=True)
        .first(),
        Task.objects.filter(status__in=LIVE_TASK, target_expires_at__isnull=False)
        .order_by("target_expires_at")
        .values_list("target_expires_at", flat=True)
        .first(),
    ]
    due = [moment for moment in candidates if moment is not None]
    return min(due) if due else None


def sweep(*, safety_net: bool = True) -> dict[str, int]:
    """Time out offers, cancel tasks past their TTL, move tasks whose routing step
    timed out, offering each task and freed worker as it goes.

    With `safety_net`, then offer waiting work to everybody who still has room:
    this catches an offer that an event could not make (its task was locked by
    another process at that moment, or the process died between commit and
    dispatch). It costs a query when nobody has room.
    """
    now = clock.now()
    timed_out = 0
    expired = Reservation.objects.filter(
        status=ReservationStatus.PENDING, expires_at__lte=now
    ).order_by("expires_at", "pk")
    for reservation_id in list(expired.values_list("pk", flat=True)):
        timed_out += time_out_reservation(reservation_id=reservation_id)
    canceled = 0
    stale = Task.objects.filter(status__in=LIVE_TASK, expires_at__lte=now)
    for task_id in list(
        stale.order_by("expires_at", "pk").values_list("pk", flat=True)
    ):
        freed = _expire(task_id, now)
        if freed is not None:
            canceled += 1
            dispatch_for_workers(freed)
    moved = Task.objects.filter(status__in=LIVE_TASK, target_expires_at__lte=now)
    stepped = 0
    for task_id in list(
        moved.order_by("target_expires_at", "pk").values_list("pk", flat=True)
    ):
        dispatch_one(task_id)
        stepped += 1
    offered = dispatch_for_workers() if safety_net else 0
    return {
        "reservations_timed_out": timed_out,
        "tasks_expired": canceled,
        "tasks_stepped": stepped,
        "reservations_created": offered,
    }


def _expire(task_id: int, now: datetime) -> list[int] | None:
    """Cancel a task past its TTL; the workers it freed, or None if not live."""
    with transaction.atomic():
        task = (
            Task.objects.select_for_update(skip_locked=True)
            .filter(pk=task_id, status__in=LIVE_TASK)
            .first()
        )
        if task is None:
            return None
        return cancel_locked(task, now, TTL_EXCEEDED)
