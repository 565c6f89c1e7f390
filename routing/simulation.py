"""routesim: replay a routing scenario through the routing services on a virtual
clock and report what happened as TaskRouter events.

The services are the server's own; only the clock and the database (a throwaway
one) differ. Same scenario, same output, byte for byte.
"""

import contextlib
import heapq
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from routing import clock, expressions, services
from routing.models import (
    Activity,
    Event,
    TaskChannel,
    TaskQueue,
    Worker,
    Workflow,
    Workspace,
)
from routing.workflows import ConfigurationError, parse_configuration

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
FIELDS = (
    "task",
    "worker",
    "filter",
    "target",
    "queue",
    "reservation",
    "activity",
    "reason",
)
ACTIONS = (
    "create_task",
    "update_task",
    "cancel_task",
    "complete_task",
    "set_activity",
    "set_attributes",
    "set_capacity",
)


class ScenarioError(ValueError):
    """A scenario that cannot run; the text names the place."""


def _need(condition: bool, place: str, message: str) -> None:
    if not condition:
        raise ScenarioError(f"{place}: {message}")


def _objects(scenario: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = scenario.get(key, [])
    _need(isinstance(items, list), key, "must be a list")
    for index, item in enumerate(items):
        _need(isinstance(item, dict), f"{key}[{index}]", "must be an object")
    return items


def _names(items: list[dict[str, Any]], key: str) -> set[str]:
    names: set[str] = set()
    for index, item in enumerate(items):
        name = item.get("name")
        _need(
            isinstance(name, str) and bool(name), f"{key}[{index}].name", "is required"
        )
        _need(name not in names, f"{key}[{index}].name", f"{name!r} is used twice")
        names.add(str(name))
    return names


def validate(scenario: Any) -> None:
    """Check names, expressions, workflows and the timeline before anything runs."""
    _need(isinstance(scenario, dict), "scenario", "must be a JSON object")
    activities = _names(_objects(scenario, "activities"), "activities")
    for key in ("default_activity", "timeout_activity"):
        value = scenario.get(key)
        _need(value in activities, key, f"unknown activity {value!r}")
    queues = _names(_objects(scenario, "queues"), "queues")
    for index, queue in enumerate(scenario.get("queues", [])):
        error = expressions.check(queue.get("target_workers", "1==1"))
        _need(error is None, f"queues[{index}].target_workers", str(error))
    workflows = _names(_objects(scenario, "workflows"), "workflows")
    for index, workflow in enumerate(scenario.get("workflows", [])):
        try:
            parse_configuration(workflow.get("configuration"), queues)
        except ConfigurationError as exc:
            raise ScenarioError(
                f"workflows[{index}].configuration.{exc.problems[0]}"
            ) from exc
    workers = _names(_objects(scenario, "workers"), "workers")
    for index, worker in enumerate(scenario.get("workers", [])):
        _validate_worker(scenario, index, worker, activities)
    _validate_timeline(scenario, workflows, workers, activities)


def _validate_worker(scenario, index: int, worker: dict, activities: set[str]) -> None:
    place = f"workers[{index}]"
    activity = worker.get("activity", scenario.get("default_activity"))
    _need(activity in activities, f"{place}.activity", f"unknown activity {activity!r}")
    channels = set(scenario.get("task_channels", []))
    for channel in worker.get("capacity", {}):
        _need(
            channel in channels,
            f"{place}.capacity",
            f"unknown task channel {channel!r}",
        )
    action = (worker.get("answer") or {}).get("action", "ignore")
    _need(
        action in ("accept", "reject", "ignore"),
        f"{place}.answer.action",
        f"must be accept, reject or ignore, not {action!r}",
    )


def _validate_timeline(scenario, workflows, workers, activities) -> None:
    channels = set(scenario.get("task_channels", []))
    tasks: set[str] = set()
    for index, entry in enumerate(_objects(scenario, "timeline")):
        place = f"timeline[{index}]"
        _need(
            isinstance(entry.get("at"), int | float), f"{place}.at", "must be a number"
        )
        action = next((a for a in ACTIONS if a in entry), "")
        _need(bool(action), place, f"needs one of {', '.join(ACTIONS)}")
        body = entry[action]
        where = f"{place}.{action}"
        _need(isinstance(body, dict), where, "must be an object")
        if action == "create_task":
            _need(
                body.get("workflow") in workflows,
                f"{where}.workflow",
                f"unknown workflow {body.get('workflow')!r}",
            )
            _need(
                body.get("channel") in channels,
                f"{where}.channel",
                f"unknown task channel {body.get('channel')!r}",
            )
            _need(bool(body.get("id")), f"{where}.id", "is required")
            tasks.add(body["id"])
        elif action in ("update_task", "cancel_task", "complete_task"):
            _need(
                body.get("task") in tasks,
                f"{where}.task",
                f"unknown task {body.get('task')!r}",
            )
        if action in ("set_activity", "set_attributes", "set_capacity"):
            _need(
                body.get("worker") in workers,
                f"{where}.worker",
                f"unknown worker {body.get('worker')!r}",
            )
        if action == "set_activity":
            _need(
                body.get("activity") in activities,
                f"{where}.activity",
                f"unknown activity {body.get('activity')!r}",
            )
        if action in ("update_task", "set_attributes"):
            _need(
                isinstance(body.get("attributes"), dict),
                f"{where}.attributes",
                "must be an object",
            )
        if action == "set_capacity":
            _need(
                body.get("channel") in channels,
                f"{where}.channel",
                f"unknown task channel {body.get('channel')!r}",
            )
            _need(
                isinstance(body.get("capacity"), int) and 0 <= body["capacity"] <= 50,
                f"{where}.capacity",
                "must be a whole number from 0 to 50",
            )


def load(scenario: dict[str, Any]) -> None:
    """Create the scenario's resources in the (throwaway) database."""
    for activity in scenario.get("activities", []):
        Activity.objects.create(
            name=activity["name"], available=bool(activity.get("available"))
        )
    Workspace.objects.create(
        default_activity=Activity.objects.get(name=scenario["default_activity"]),
        timeout_activity=Activity.objects.get(name=scenario["timeout_activity"]),
    )
    for name in scenario.get("task_channels", []):
        TaskChannel.objects.create(unique_name=name)
    for queue in scenario.get("queues", []):
        TaskQueue.objects.create(
            name=queue["name"],
            target_workers=queue.get("target_workers", "1==1"),
            task_order=queue.get("task_order", "FIFO"),
            max_reserved_workers=queue.get("max_reserved_workers", 1),
        )
    for workflow in scenario.get("workflows", []):
        Workflow.objects.create(
            name=workflow["name"],
            configuration=workflow["configuration"],
            task_reservation_timeout=workflow.get("task_reservation_timeout", 120),
        )
    for worker in scenario.get("workers", []):
        services.create_worker(
            name=worker["name"],
            attributes=worker.get("attributes", {}),
            activity=worker.get("activity"),
            capacity=worker.get("capacity", {}),
        )


@dataclass
class Simulation:
    scenario: dict[str, Any]
    write: Callable[[dict[str, Any]], None]
    now: float = 0
    tasks: dict[int, str] = field(default_factory=dict)
    task_ids: dict[str, int] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)
    seen: int = 0
    agenda: list[tuple[float, int, int, Callable[[], None]]] = field(
        default_factory=list
    )
    counter: Iterator[int] = field(default_factory=itertools.count)

    def moment(self) -> datetime:
        return EPOCH + timedelta(seconds=self.now)

    def at(self, when: float, rank: int, action: Callable[[], None]) -> None:
        heapq.heappush(self.agenda, (when, rank, next(self.counter), action))

    def run(self) -> None:
        until = float(self.scenario.get("until", 3600))
        for entry in self.scenario.get("timeline", []):
            self.at(float(entry["at"]), 0, self._timeline_action(entry))
        with clock.using(self.moment):
            load(self.scenario)
            self.seen = (
                Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
            )
            while True:
                when = self._next_time()
                if when is None or when > until:
                    break
                self.now = when
                self._run_instant()

    def _next_time(self) -> float | None:
        deadline = services.next_deadline()
        times = [self.agenda[0][0]] if self.agenda else []
        if deadline is not None:
            times.append(max((deadline - EPOCH).total_seconds(), self.now))
        return min(times) if times else None

    def _run_instant(self) -> None:
        # Timeline entries first, then the routing they cause, then answers due now.
        while True:
            while self.agenda and self.agenda[0][0] <= self.now:
                heapq.heappop(self.agenda)[3]()
                self._report()
            services.sweep()
            self._report()
            if not (self.agenda and self.agenda[0][0] <= self.now):
                return

    def _report(self) -> None:
        events = (
            Event.objects.filter(pk__gt=self.seen)
            .select_related("worker", "queue")
            .order_by("pk")
        )
        for event in events:
            self.seen = event.pk
            self.write(self._line(event))
            self._react(event)

    def _line(self, event: Event) -> dict[str, Any]:
        seconds = (event.created_at - EPOCH).total_seconds()
        values = {
            "task": self.tasks.get(event.task_id) if event.task_id else None,
            "worker": event.worker.name if event.worker else None,
            "queue": event.queue.name if event.queue else None,
            "reservation": self._label(event.reservation_id),
            **{
                key: event.data[key]
                for key in ("filter", "target", "activity", "reason")
                if key in event.data
            },
        }
        line: dict[str, Any] = {
            "t": int(seconds) if seconds.is_integer() else seconds,
            "type": event.type,
        }
        line.update((key, values[key]) for key in FIELDS if values.get(key) is not None)
        return line

    def _label(self, reservation_id: int | None) -> str | None:
        if reservation_id is None:
            return None
        if reservation_id not in self.labels:
            self.labels[reservation_id] = f"r{len(self.labels) + 1}"
        return self.labels[reservation_id]

    def _react(self, event: Event) -> None:
        """Workers answer offers as the scenario scripts them."""
        if event.type not in ("reservation.created", "reservation.accepted"):
            return
        name = event.worker.name if event.worker else ""
        worker: dict[str, Any] = next(
            (w for w in self.scenario.get("workers", []) if w["name"] == name), {}
        )
        answer = worker.get("answer") or {}
        reservation_id = event.reservation_id or 0
        if event.type == "reservation.created":
            action = answer.get("action", "ignore")
            if action in ("accept", "reject"):
                self.at(
                    self.now + float(answer.get("after", 0)),
                    1,
                    lambda: self._answer(action, reservation_id),
                )
        elif answer.get("complete_after") is not None:
            task_id = event.task_id or 0
            self.at(
                self.now + float(answer["complete_after"]),
                1,
                lambda: self._complete(task_id),
            )

    def _answer(self, action: str, reservation_id: int) -> None:
        # Rescinded or timed out before the worker answered: nothing to do.
        with contextlib.suppress(services.InvalidTransition):
            if action == "accept":
                services.accept_reservation(reservation_id=reservation_id)
            else:
                services.reject_reservation(reservation_id=reservation_id)

    def _complete(self, task_id: int) -> None:
        with contextlib.suppress(services.InvalidTransition):
            services.complete_task(task_id=task_id)

    def _timeline_action(self, entry: dict[str, Any]) -> Callable[[], None]:
        action = next(a for a in ACTIONS if a in entry)
        body = entry[action]
        return lambda: getattr(self, f"_do_{action}")(body)

    def _do_create_task(self, body: dict[str, Any]) -> None:
        task = services.create_task(
            workflow=body["workflow"],
            channel=body["channel"],
            attributes=body.get("attributes", {}),
            priority=int(body.get("priority", 0)),
            timeout=int(body.get("timeout", 86400)),
        )
        # Known before the task's first events are reported, after this action.
        self.tasks[task.pk], self.task_ids[body["id"]] = body["id"], task.pk

    def _do_update_task(self, body: dict[str, Any]) -> None:
        services.update_task_attributes(
            task_id=self.task_ids[body["task"]], attributes=body["attributes"]
        )

    def _do_cancel_task(self, body: dict[str, Any]) -> None:
        with contextlib.suppress(services.InvalidTransition):
            services.cancel_task(task_id=self.task_ids[body["task"]])

    def _do_complete_task(self, body: dict[str, Any]) -> None:
        self._complete(self.task_ids[body["task"]])

    def _do_set_activity(self, body: dict[str, Any]) -> None:
        worker = Worker.objects.get(name=body["worker"])
        services.set_worker_activity(worker_id=worker.pk, activity=body["activity"])

    def _do_set_attributes(self, body: dict[str, Any]) -> None:
        worker = Worker.objects.get(name=body["worker"])
        services.set_worker_attributes(
            worker_id=worker.pk, attributes=body["attributes"]
        )

    def _do_set_capacity(self, body: dict[str, Any]) -> None:
        worker = Worker.objects.get(name=body["worker"])
        services.set_worker_capacity(
            worker_id=worker.pk, channel=body["channel"], capacity=int(body["capacity"])
        )
