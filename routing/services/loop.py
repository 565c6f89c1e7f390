"""Which waiting tasks to look at when something changes.

A task is looked at when it changes (`dispatch_one`, from the task services). A
worker who gains room (an activity, capacity or attribute change, a completed,
rejected, rescinded or canceled task) is offered the heads of the queues they belong
to, best first, until they are full: `dispatch_for_workers`. Both cost what they
offer, not what waits: each queue's head is read through `task_waiting_idx` (or its
LIFO twin), so a decision stays flat however many tasks wait.

`dispatch()`, which looks at every waiting task, is for what changes every task at
once: an edited workflow or queue.
"""

import heapq
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import F, Q, QuerySet

from routing import expressions
from routing.models import (
    LIVE_TASK,
    Task,
    TaskQueue,
    TaskStatus,
    Worker,
    WorkerChannel,
)
from routing.services.dispatch import dispatch_one, load_of_row
from routing.workflows import task_sort_key

PAGE = 20  # heads read at a time from each queue


def with_room(worker_ids: Iterable[int] | None = None) -> QuerySet[WorkerChannel]:
    """(worker, channel) pairs where an available worker could take one more task."""
    rows = (
        WorkerChannel.objects.filter(
            available=True, capacity__gt=0, worker__activity__available=True
        )
        .annotate(load=load_of_row())
        .filter(load__lt=F("capacity"))
    )
    if worker_ids is not None:
        rows = rows.filter(worker_id__in=list(worker_ids))
    return rows


def dispatch(*, task_ids: list[int] | None = None) -> int:
    """Offer every waiting task (or those in `task_ids`) to whoever can take it.

    Tasks go in order: higher priority first, then FIFO or LIFO by their queue.
    Returns how many reservations were made. Nobody with room costs one query.
    """
    room = set(with_room().values_list("channel_id", flat=True).distinct())
    if not room:
        return 0
    waiting = Task.objects.filter(
        status__in=LIVE_TASK, channel_id__in=room
    ).select_related("queue")
    if task_ids is not None:
        waiting = waiting.filter(pk__in=task_ids)
    ordered = sorted(
        waiting,
        key=lambda t: task_sort_key(bool(t.queue and t.queue.task_order == "LIFO"))(t),
    )
    return sum(dispatch_one(task.pk) for task in ordered)


def dispatch_for_workers(worker_ids: Iterable[int] | None = None) -> int:
    """Offer waiting tasks to these workers (None: everyone with room) until each
    is full or nothing they could take is left. Returns reservations made."""
    pairs = list(
        with_room(worker_ids)
        .order_by("worker_id", "channel_id")
        .values_list("worker_id", "channel_id")
    )
    if not pairs:
        return 0
    queues = list(TaskQueue.objects.all())
    attributes = dict(
        Worker.objects.filter(pk__in={w for w, _ in pairs}).values_list(
            "pk", "attributes"
        )
    )
    seen: set[int] = set()  # a task looked at once in this call had its chance
    # Queues found with nothing waiting on a channel stay so for this call: a task
    # created meanwhile is offered by its own dispatch_one.
    empty: set[tuple[int, int]] = set()
    made = 0
    for worker_id, channel_id in pairs:
        member_of = [
            queue
            for queue in queues
            if expressions.matches(queue.target_workers, attributes[worker_id])
        ]
        made += _fill(worker_id, channel_id, member_of, seen, empty)
    return made


def _fill(
    worker_id: int,
    channel_id: int,
    queues: list[TaskQueue],
    seen: set[int],
    empty: set[tuple[int, int]],
) -> int:
    """Look at the heads this worker could take, best first, until they are full."""
    streams = [
        _heads(queue, channel_id, empty)
        for queue in queues
        if (queue.pk, channel_id) not in empty
    ]
    streams.append(_directed(worker_id, channel_id))
    made = 0
    for _key, task_id in heapq.merge(*streams):
        if task_id in seen:
            continue
        seen.add(task_id)
        offered = dispatch_one(task_id)
        made += offered
        if (
            offered
            and not with_room([worker_id]).filter(channel_id=channel_id).exists()
        ):
            break
    return made


def _heads(
    queue: TaskQueue, channel_id: int, empty: set[tuple[int, int]]
) -> Iterator[tuple[tuple, int]]:
    """A queue's waiting tasks on a channel in its order, read a page at a time
    (keyset pages: tasks offered meanwhile leave the pending set)."""
    lifo = queue.task_order == "LIFO"
    statuses = [TaskStatus.PENDING]
    if queue.max_reserved_workers > 1:  # a reserved task may take more offers
        statuses.append(TaskStatus.RESERVED)
    rows = Task.objects.filter(queue=queue, channel_id=channel_id, status__in=statuses)
    newest = ("-created_at", "-pk") if lifo else ("created_at", "pk")
    order = ("-routing_priority", *newest)
    pages = _pages(rows.order_by(*order), task_sort_key(lifo), lifo)
    first = next(pages, None)
    if first is None:
        empty.add((queue.pk, channel_id))
        return
    yield first
    yield from pages


def _directed(worker_id: int, channel_id: int) -> Iterator[tuple[tuple, int]]:
    rows = Task.objects.filter(
        direct_worker_id=worker_id, channel_id=channel_id, status__in=LIVE_TASK
    ).order_by("-routing_priority", "created_at", "pk")
    yield from _pages(rows, task_sort_key(False), False)


def _pages(rows: QuerySet[Task], key: Any, lifo: bool) -> Iterator[tuple[tuple, int]]:
    after: Task | None = None
    while True:
        page = list(
            (rows if after is None else rows.filter(_after(after, lifo))).only(
                "pk", "routing_priority", "created_at"
            )[:PAGE]
        )
        for task in page:
            yield key(task), task.pk
        if len(page) < PAGE:
            return
        after = page[-1]


def _after(task: Task, lifo: bool) -> Q:
    later = "lt" if lifo else "gt"
    return (
        Q(routing_priority__lt=task.routing_priority)
        | Q(
            routing_priority=task.routing_priority,
            **{f"created_at__{later}": task.created_at},
        )
        | Q(
            routing_priority=task.routing_priority,
            created_at=task.created_at,
            **{f"pk__{later}": task.pk},
        )
    )
