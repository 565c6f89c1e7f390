"""Routing's write side: the only way other apps change routing records."""

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from routing.models import Task, TaskChannel, Workflow
from routing.realtime import publish_on_commit

SUPERVISORS_GROUP = "supervisors"


class RoutingError(ValueError):
    """A request routing cannot carry out; the text names what is wrong."""


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


def create_task(
    *,
    workflow: str,
    channel: str,
    attributes: Mapping[str, Any],
    priority: int = 0,
    timeout: int = 86400,
) -> Task:
    """Create a pending task in `workflow` on task channel `channel`.

    Raises RoutingError naming an unknown workflow or channel, or a bad priority
    or timeout. Publishes `task.created` to supervisors after commit.
    """
    if timeout <= 0:
        raise RoutingError(
            f"timeout must be a positive number of seconds, not {timeout}"
        )
    with transaction.atomic():
        task = Task.objects.create(
            workflow=get_workflow(name=workflow),
            channel=get_task_channel(unique_name=channel),
            attributes=dict(attributes),
            priority=priority,
            timeout=timeout,
        )
        publish_on_commit([SUPERVISORS_GROUP], "task.created", task_id=task.pk)
    return task
