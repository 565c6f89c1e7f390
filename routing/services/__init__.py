"""Routing's write side: the only way anything changes routing state."""

from routing.services.loop import dispatch, dispatch_for_workers
from routing.services.reservations import (
    accept_reservation,
    reject_reservation,
    time_out_reservation,
)
from routing.services.sweep import next_deadline, sweep
from routing.services.tasks import (
    InvalidTransition,
    RoutingError,
    cancel_task,
    complete_task,
    create_task,
    get_task_channel,
    get_workflow,
    move_task,
    transfer_task,
    update_task_attributes,
    wrapup_task,
)
from routing.services.workers import (
    WorkerError,
    create_worker,
    ensure_workspace,
    set_worker_activity,
    set_worker_attributes,
    set_worker_capacity,
)

__all__ = [
    "InvalidTransition",
    "RoutingError",
    "WorkerError",
    "accept_reservation",
    "cancel_task",
    "complete_task",
    "create_task",
    "create_worker",
    "dispatch",
    "dispatch_for_workers",
    "ensure_workspace",
    "get_task_channel",
    "get_workflow",
    "move_task",
    "next_deadline",
    "reject_reservation",
    "set_worker_activity",
    "set_worker_attributes",
    "set_worker_capacity",
    "sweep",
    "time_out_reservation",
    "transfer_task",
    "update_task_attributes",
    "wrapup_task",
]
