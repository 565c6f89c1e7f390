"""Workers: activity, attributes, capacity per channel; and the workspace defaults."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import transaction

from routing import clock
from routing.events import record
from routing.models import Activity, TaskChannel, Worker, WorkerChannel, Workspace

DEFAULT_ACTIVITIES = (
    ("Offline", False),
    ("Available", True),
    ("Unavailable", False),
    ("Break", False),
)


class WorkerError(ValueError):
    pass


def ensure_workspace() -> Workspace:
    """The workspace, with TaskRouter's default activities on first use."""
    workspace = Workspace.objects.select_related(
        "default_activity", "timeout_activity"
    ).first()
    if workspace is not None:
        return workspace
    for name, available in DEFAULT_ACTIVITIES:
        Activity.objects.get_or_create(name=name, defaults={"available": available})
    offline = Activity.objects.get(name="Offline")
    return Workspace.objects.create(default_activity=offline, timeout_activity=offline)


def create_worker(
    *,
    name: str,
    attributes: Mapping[str, Any] | None = None,
    activity: str | None = None,
    capacity: Mapping[str, int] | None = None,
    user: Any = None,
) -> Worker:
    """A worker in `activity` (default: the workspace's), with channel capacities."""
    if Worker.objects.filter(name__iexact=name).exists():
        raise WorkerError(f"a worker named {name!r} exists already")
    workspace = ensure_workspace()
    chosen = _activity(activity) if activity else workspace.default_activity
    now = clock.now()
    with transaction.atomic():
        worker = Worker.objects.create(
            name=name,
            attributes=dict(attributes or {}),
            activity=chosen,
            activity_changed_at=now,
            user=user,
        )
        # The starting activity is logged too: time per activity counts from here.
        record("worker.activity.update", worker=worker, activity=chosen.name)
        for channel in TaskChannel.objects.all():
            WorkerChannel.objects.create(
                worker=worker,
                channel=channel,
                capacity=int((capacity or {}).get(channel.unique_name, 0)),
            )
    return worker


def _activity(name: str) -> Activity:
    activity = Activity.objects.filter(name=name).first()
    if activity is None:
        raise WorkerError(f"no activity named {name!r}")
    return activity


def move_worker(worker: Worker, activity: Activity, now: datetime) -> bool:
    """Change a worker's activity (inside a transaction); False if already there."""
    if worker.activity_id == activity.pk:
        return False
    Worker.objects.filter(pk=worker.pk).update(
        activity=activity, activity_changed_at=now
    )
    worker.activity, worker.activity_changed_at = activity, now
    record("worker.activity.update", worker=worker, activity=activity.name)
    return True


def set_worker_activity(*, worker_id: int, activity: str) -> Worker:
    """Offers already made stay until answered or timed out."""
    from routing.services.loop import dispatch_for_workers

    target = _activity(activity)
    with transaction.atomic():
        worker = Worker.objects.select_for_update().get(pk=worker_id)
        moved = move_worker(worker, target, clock.now())
    if moved and target.available:
        dispatch_for_workers([worker.pk])
    return worker


def set_worker_attributes(*, worker_id: int, attributes: Mapping[str, Any]) -> Worker:
    from routing.services.loop import dispatch_for_workers

    if not isinstance(attributes, Mapping):
        raise WorkerError("attributes must be a JSON object")
    with transaction.atomic():
        worker = Worker.objects.select_for_update().get(pk=worker_id)
        if worker.attributes == dict(attributes):
            return worker
        worker.attributes = dict(attributes)
        worker.save(update_fields=["attributes"])
        record("worker.attributes.update", worker=worker)
    dispatch_for_workers([worker.pk])
    return worker


def set_worker_capacity(
    *, worker_id: int, channel: str, capacity: int, available: bool | None = None
) -> WorkerChannel:
    """Capacity 0..50 on one channel, and optionally that channel's on/off switch."""
    from routing.services.loop import dispatch_for_workers

    if not isinstance(capacity, int) or not 0 <= capacity <= 50:
        raise WorkerError(f"capacity must be from 0 to 50, not {capacity!r}")
    with transaction.atomic():
        worker = Worker.objects.select_for_update().get(pk=worker_id)
        task_channel = TaskChannel.objects.filter(unique_name=channel).first()
        if task_channel is None:
            raise WorkerError(f"no task channel named {channel!r}")
        row, _ = WorkerChannel.objects.get_or_create(
            worker=worker, channel=task_channel
        )
        if row.capacity != capacity:
            row.capacity = capacity
            record(
                "worker.capacity.update",
                worker=worker,
                channel=channel,
                capacity=capacity,
            )
        if available is not None and row.available != available:
            row.available = available
            record(
                "worker.channel.availability.update",
                worker=worker,
                channel=channel,
                available=available,
            )
        row.save()
    dispatch_for_workers([worker.pk])
    return row
