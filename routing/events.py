"""The event log: one row per thing that happened, named as TaskRouter names it,
published after commit to supervisors and to the worker concerned."""

from typing import Any

from routing import clock
from routing.models import Event, Reservation, Task, TaskQueue, Worker
from routing.realtime import group_name, publish_on_commit

SUPERVISORS_GROUP = "supervisors"


def worker_group(worker_id: int) -> str:
    return group_name("worker", worker_id)


def record(
    event_type: str,
    *,
    task: Task | None = None,
    worker: Worker | None = None,
    reservation: Reservation | None = None,
    queue: TaskQueue | None = None,
    **data: Any,
) -> Event:
    """Append an event and publish it (ids only) once the transaction commits."""
    event = Event.objects.create(
        type=event_type,
        created_at=clock.now(),
        task=task,
        worker=worker,
        reservation=reservation,
        queue=queue,
        data=data,
    )
    groups = [SUPERVISORS_GROUP]
    if worker is not None:
        groups.append(worker_group(worker.pk))
    # Consumers receive `task-queue.entered` in method `task_queue_entered`.
    publish_on_commit(
        groups,
        event_type.replace("-", "_"),
        event_id=event.pk,
        task_id=task.pk if task else None,
        worker_id=worker.pk if worker else None,
        reservation_id=reservation.pk if reservation else None,
    )
    return event
