"""Workflow configuration and the matching rules, as pure functions on plain data.

Parsing names every bad field (`task_routing.filters[0].targets[1].queue`), so a
workflow is refused when it is saved, not when a task meets it. Evaluation follows
TaskRouter: filters in order, routing steps whose timeouts count on the task's age,
the next matching filter when a filter's steps run out, `default_filter` only for
tasks no filter matches.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from routing import expressions

DEFAULT_FILTER = "default"


class ConfigurationError(ValueError):
    """A workflow configuration that cannot route; `problems` names each field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Target:
    queue: str
    priority: int | None = None
    timeout: int | None = None
    expression: str = ""
    order_by: str = ""
    skip_if: str = ""
    known_worker_friendly_name: str = ""
    known_worker_sid: str = ""


@dataclass(frozen=True)
class Filter:
    name: str
    expression: str
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Routing:
    filters: tuple[Filter, ...]
    default: Filter | None = None


@dataclass(frozen=True)
class Step:
    """Where a task of a given age stands: a filter's routing step and its deadline."""

    filter_index: int | None  # None: the default filter
    filter_name: str
    target_index: int
    target: Target
    ends_at_age: int | None  # None: a final step, no timeout


def _number(value: Any, where: str, problems: list[str], low: int, high: int) -> Any:
    if value is None:
        return None
    whole = isinstance(value, int) and not isinstance(value, bool)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value, whole = int(value), True
    if not whole:
        problems.append(f"{where}: must be a whole number, not {value!r}")
        return None
    number = int(value)
    if not low <= number <= high:
        problems.append(f"{where}: must be between {low} and {high}, not {number}")
    return number


def _expression(source: Any, where: str, problems: list[str]) -> str:
    if source in (None, ""):
        return ""
    if not isinstance(source, str):
        problems.append(f"{where}: must be a string")
        return ""
    if error := expressions.check(source):
        problems.append(f"{where}: {error}")
    return source


def _target(raw: Any, where: str, queues: Iterable[str], problems: list[str]) -> Target:
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be an object")
        return Target(queue="")
    queue = raw.get("queue")
    if not isinstance(queue, str) or not queue:
        problems.append(f"{where}.queue: is required")
    elif queue not in queues:
        problems.append(f"{where}.queue: unknown queue {queue!r}")
    return Target(
        queue=str(queue or ""),
        priority=_number(
            raw.get("priority"), f"{where}.priority", problems, 0, 2**31 - 1
        ),
        timeout=_number(raw.get("timeout"), f"{where}.timeout", problems, 0, 1209600),
        expression=_expression(raw.get("expression"), f"{where}.expression", problems),
        order_by=_order_by(raw.get("order_by"), f"{where}.order_by", problems),
        skip_if=_expression(raw.get("skip_if"), f"{where}.skip_if", problems),
        known_worker_friendly_name=str(raw.get("known_worker_friendly_name") or ""),
        known_worker_sid=str(raw.get("known_worker_sid") or ""),
    )


def _order_by(raw: Any, where: str, problems: list[str]) -> str:
    if not raw:
        return ""
    try:
        order_clauses(str(raw))
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
    return str(raw)


def parse_configuration(configuration: Any, queues: Iterable[str]) -> Routing:
    """The workflow's routing; raises ConfigurationError naming every bad field."""
    names = set(queues)
    problems: list[str] = []
    routing = (
        configuration.get("task_routing") if isinstance(configuration, dict) else None
    )
    if not isinstance(routing, dict):
        raise ConfigurationError(["task_routing: must be an object"])
    filters = []
    raw_filters = routing.get("filters", [])
    if not isinstance(raw_filters, list):
        problems.append("task_routing.filters: must be a list")
        raw_filters = []
    for index, raw in enumerate(raw_filters):
        filters.append(_filter(raw, f"task_routing.filters[{index}]", names, problems))
    default = None
    if routing.get("default_filter") is not None:
        raw_default = routing["default_filter"]
        where = "task_routing.default_filter"
        default = Filter(
            DEFAULT_FILTER, "", (_target(raw_default, where, names, problems),)
        )
        if isinstance(raw_default, dict) and raw_default.get("timeout") is not None:
            # It is where a task waits when no filter matches: there is no next step.
            problems.append(f"{where}.timeout: the default filter cannot time out")
    if problems:
        raise ConfigurationError(problems)
    return Routing(filters=tuple(filters), default=default)


def _filter(raw: Any, where: str, queues: set[str], problems: list[str]) -> Filter:
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be an object")
        return Filter("", "", ())
    targets = raw.get("targets")
    if not isinstance(targets, list) or not targets:
        problems.append(f"{where}.targets: must be a non-empty list")
        targets = []
    return Filter(
        name=str(raw.get("filter_friendly_name") or f"filter {where}"),
        expression=_expression(
            raw.get("expression") or "1==1", f"{where}.expression", problems
        ),
        targets=tuple(
            _target(t, f"{where}.targets[{i}]", queues, problems)
            for i, t in enumerate(targets)
        ),
    )


def locate(
    routing: Routing,
    attributes: Mapping[str, Any],
    age: float,
    skipped: Sequence[Sequence[int | None]] = (),
) -> Step | None:
    """The routing step for a task of `age` seconds; None when the workflow timed out.

    Step timeouts add up on the task's age: steps of 10 s each end at ages 10, 20
    and 30. Skipped steps take no time.
    """
    matching = [
        (index, f)
        for index, f in enumerate(routing.filters)
        if expressions.matches(f.expression, attributes)
    ]
    if not matching:
        return _first_step(routing.default, skipped) if routing.default else None
    elapsed = 0
    for filter_index, flt in matching:
        for target_index, target in enumerate(flt.targets):
            if [filter_index, target_index] in [list(s) for s in skipped]:
                continue
            if target.timeout is None:
                return Step(filter_index, flt.name, target_index, target, None)
            elapsed += target.timeout
            if age < elapsed:
                return Step(filter_index, flt.name, target_index, target, elapsed)
    return None


def _first_step(
    default: Filter, skipped: Sequence[Sequence[int | None]]
) -> Step | None:
    if [None, 0] in [list(s) for s in skipped]:
        return None
    target = default.targets[0]
    return Step(None, DEFAULT_FILTER, 0, target, target.timeout)


# -- choosing workers and tasks ----------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A worker as the matcher sees it."""

    id: int
    name: str
    attributes: Mapping[str, Any]
    load: int  # tasks held or offered on the task's channel
    unoccupied_since: datetime
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def order_clauses(source: str) -> list[tuple[str, bool]]:
    """`"worker.level DESC, worker.age ASC"` as [("level", True), ("age", False)]."""
    clauses = []
    for part in source.split(","):
        words = part.split()
        if not words or len(words) > 2:
            raise ValueError(f"cannot read order_by clause {part.strip()!r}")
        key = words[0].removeprefix("worker.")
        direction = words[1].upper() if len(words) == 2 else "ASC"
        if direction not in ("ASC", "DESC"):
            raise ValueError(
                f"order_by direction must be ASC or DESC, not {words[1]!r}"
            )
        clauses.append((key, direction == "DESC"))
    return clauses


def _attribute(attributes: Mapping[str, Any], path: str) -> Any:
    value: Any = attributes
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def order_workers(
    candidates: Iterable[Candidate], order_by: str = ""
) -> list[Candidate]:
    """Tie-breaks: `order_by` (a worker lacking the attribute sorts after those that
    have it), then fewer tasks on the channel, then unoccupied longest, then name."""
    clauses = order_clauses(order_by) if order_by else []

    def key(candidate: Candidate) -> tuple:
        parts: list[Any] = []
        for attribute, descending in clauses:
            value = _attribute(candidate.attributes, attribute)
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if not numeric:
                parts.append((1, 0))
            else:
                parts.append((0, -value if descending else value))
        return (
            *parts,
            candidate.load,
            candidate.unoccupied_since,
            candidate.name.lower(),
        )

    return sorted(candidates, key=key)


def worker_scope(task_attributes: Mapping[str, Any], worker: Mapping[str, Any]) -> dict:
    return {"task": task_attributes, "worker": worker}


def task_sort_key(lifo: bool) -> Callable[[Any], tuple]:
    """Higher priority first; then older (FIFO) or newer (LIFO); then id."""

    def key(task: Any) -> tuple:
        created = task.created_at.timestamp()
        return (-task.routing_priority, -created if lifo else created, task.pk)

    return key
