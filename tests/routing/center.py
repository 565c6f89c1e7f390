"""A small contact center for routing tests, and ways to look at it.

Everything runs on a virtual clock (`routing.clock.using`), so deadlines are
reached by moving time, not by waiting, and "idle longest" is deterministic.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from routing import services
from routing.models import (
    Event,
    Reservation,
    Task,
    Worker,
    Workflow,
)

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
SUPPORT = {
    "task_routing": {
        "filters": [
            {
                "filter_friendly_name": "Spanish",
                "expression": "language == 'es'",
                "targets": [
                    {"queue": "Spanish", "timeout": 30},
                    {"queue": "Everyone", "priority": 10},
                ],
            },
            {
                "filter_friendly_name": "English",
                "expression": "language == 'en'",
                "targets": [{"queue": "English"}],
            },
        ],
        "default_filter": {"queue": "Everyone"},
    }
}


class VirtualClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def workflow(name: str, configuration: dict[str, Any], timeout: int = 20) -> None:
    Workflow.objects.create(
        name=name, configuration=configuration, task_reservation_timeout=timeout
    )


def single_step(name: str, **target: Any) -> None:
    """A workflow whose one filter sends every task to one target."""
    workflow(
        name,
        {
            "task_routing": {
                "filters": [
                    {
                        "filter_friendly_name": name,
                        "expression": "1==1",
                        "targets": [target],
                    }
                ]
            }
        },
    )


def hire(
    name: str, *languages: str, activity: str = "Available", **attributes: Any
) -> Worker:
    capacity = attributes.pop("capacity", {"chat": 1})
    return services.create_worker(
        name=name,
        attributes={"languages": list(languages), **attributes},
        activity=activity,
        capacity=capacity,
    )


def new_task(workflow: str = "Support", channel: str = "chat", **kw: Any) -> Task:
    attributes = kw.pop("attributes", {"language": "es"})
    return services.create_task(
        workflow=workflow, channel=channel, attributes=attributes, **kw
    )


def offers(task: Task) -> list[tuple[str, str]]:
    """(worker, status) of the task's reservations, in order of creation."""
    rows = task.reservations.order_by("pk").select_related("worker")
    return [(r.worker.name, r.status) for r in rows]


def offer_to(worker: str, task: Task) -> Reservation:
    return Reservation.objects.get(task=task, worker__name=worker, status="pending")


def log(task: Task | None = None) -> list[str]:
    events = Event.objects.order_by("pk")
    if task is not None:
        events = events.filter(task=task)
    return list(events.values_list("type", flat=True))


def fresh(task: Task) -> Task:
    return Task.objects.get(pk=task.pk)


def accept(task: Task, worker: str = "ana") -> None:
    services.accept_reservation(reservation_id=offer_to(worker, task).pk)


def later(center: VirtualClock, seconds: float) -> None:
    """Move the clock and let beat's sweep catch up."""
    center.advance(seconds)
    services.sweep()
