"""Import a TaskRouter setup exported from Twilio: activities, task channels, queues,
workflows, workers and the workspace's activities, in the shapes of Twilio's REST
resources (`friendly_name`, `sid`, `attributes` and `configuration` as JSON strings).

Everything is read and checked first, and every problem is reported together;
nothing is stored unless there is none. Rows are matched by Twilio sid, then by
name, so importing the same export again updates in place and adds nothing.
Activities have no sid column: they are matched by name. Workflow configurations
name queues by `WQ...` sid; each is rewritten to the local queue's name.
"""

import copy
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import models, transaction

from routing import expressions, services
from routing.models import (
    Activity,
    TaskChannel,
    TaskOrder,
    TaskQueue,
    Worker,
    Workflow,
    Workspace,
)
from routing.services.workers import DEFAULT_ACTIVITIES
from routing.workflows import ConfigurationError, parse_configuration

QUEUE_SID = re.compile(r"WQ[0-9a-fA-F]{32}")
SECTIONS = ("activities", "task_channels", "task_queues", "workflows", "workers")


class ImportProblems(ValueError):
    """The export cannot be imported; `problems` names each, by section and row."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class ImportSummary:
    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        return [
            f"{kind}: {self.created[kind]} created, {self.updated[kind]} updated"
            for kind in SECTIONS
        ]


def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """`["WQ...=Spanish"]` as a dict; raises ValueError on a malformed item."""
    mapping = {}
    for item in items:
        sid, sep, name = item.partition("=")
        if not sep or not sid.strip() or not name.strip():
            raise ValueError(f"--map takes WQ...=QUEUE_NAME, not {item!r}")
        mapping[sid.strip()] = name.strip()
    return mapping


def queue_refs(configuration: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each routing target of a configuration with a `queue`, and where it is."""
    routing = (
        configuration.get("task_routing") if isinstance(configuration, dict) else None
    )
    if not isinstance(routing, dict):
        return
    filters = routing.get("filters")
    for i, flt in enumerate(filters if isinstance(filters, list) else []):
        targets = flt.get("targets") if isinstance(flt, dict) else None
        for j, target in enumerate(targets if isinstance(targets, list) else []):
            if isinstance(target, dict) and isinstance(target.get("queue"), str):
                yield f"task_routing.filters[{i}].targets[{j}]", target
    default = routing.get("default_filter")
    if isinstance(default, dict) and isinstance(default.get("queue"), str):
        yield "task_routing.default_filter", default


@dataclass
class Row:
    """One resource of the export, read and checked, and the local one it updates."""

    where: str
    sid: str
    name: str
    fields: dict[str, Any]
    existing: Any = None


class _Reader:
    """Reads the export into rows, collecting every problem on the way."""

    def __init__(self, data: Any, mapping: Mapping[str, str]) -> None:
        self.problems: list[str] = []
        self.mapping = mapping
        if not isinstance(data, dict):
            data = {}
            self.problems.append("the export must be a JSON object")
        self.data = data

    def items(self, section: str) -> Iterator[tuple[str, dict[str, Any]]]:
        return self.items_of(self.data.get(section), section)

    def items_of(self, raw: Any, section: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Each object of a list (or the one object), named for problems."""
        raw = raw or []
        for index, item in enumerate(raw if isinstance(raw, list) else [raw]):
            where = f"{section}[{index}]" if isinstance(raw, list) else section
            name = item.get("friendly_name") if isinstance(item, dict) else None
            name = name or (item.get("unique_name") if isinstance(item, dict) else "")
            if isinstance(item, dict):
                yield (f"{where} {name!r}" if name else where), item
            else:
                self.problems.append(f"{where}: must be an object")

    def text(self, item: dict, key: str, where: str, limit: int) -> str:
        value = item.get(key)
        if not isinstance(value, str) or not value.strip():
            self.problems.append(f"{where}: {key} is required")
            return ""
        if len(value.strip()) > limit:
            self.problems.append(f"{where}: {key} is longer than {limit} characters")
        return value.strip()

    def number(self, item: dict, key: str, where: str, bounds: tuple[int, int]) -> int:
        low, high, value = *bounds, item.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.append(f"{where}: {key} must be a whole number: {value!r}")
        elif not low <= value <= high:
            self.problems.append(f"{where}: {key} must be from {low} to {high}")
        return value if isinstance(value, int) else low

    def flag(self, item: dict, key: str, where: str) -> Any:
        if not isinstance(item.get(key), bool | None):
            self.problems.append(f"{where}: {key} must be true or false")
            return None
        return item.get(key)

    def json_object(self, item: dict, key: str, where: str) -> dict[str, Any]:
        value = item.get(key)
        if isinstance(value, str) and value:
            try:
                value = json.loads(value)
            except ValueError as exc:
                self.problems.append(f"{where}: {key} is not valid JSON: {exc}")
                return {}
        if not isinstance(value, dict | None):
            self.problems.append(f"{where}: {key} must be a JSON object")
        return value if isinstance(value, dict) else {}

    def rows(
        self, section: str, name_key: str, limit: int, read: Callable[..., dict]
    ) -> list[Row]:
        rows = []
        for where, item in self.items(section):
            sid = item.get("sid") or ""
            if not isinstance(sid, str) or len(sid) > 34:
                self.problems.append(f"{where}: sid must be a Twilio id")
                sid = ""
            name = self.text(item, name_key, where, limit)
            rows.append(Row(where, sid, name, read(self, item, where)))
        return rows

    def match(self, rows: list[Row], model: Any, lookup: str) -> None:
        """Find the local row each updates: by sid, else by name."""
        seen: dict[Any, str] = {}
        for row in rows:
            by_sid = model.objects.filter(sid=row.sid).first() if row.sid else None
            by_name = model.objects.filter(**{lookup: row.name}).first()
            if by_sid and by_name and by_sid.pk != by_name.pk:
                self.problems.append(
                    f"{row.where}: its sid is {by_sid} here, and another is named "
                    f"{row.name!r}"
                )
            row.existing = by_sid or by_name
            keys = [("name", row.name.lower() if "iexact" in lookup else row.name)]
            keys += [("sid", row.sid)] if row.sid else []
            keys += [("local", row.existing.pk)] if row.existing else []
            for key in keys:
                if key in seen:
                    self.problems.append(f"{row.where}: same {key[0]} as {seen[key]}")
                seen[key] = row.where


def _activity(reader: _Reader, item: dict, where: str) -> dict[str, Any]:
    if not isinstance(item.get("available"), bool):
        reader.problems.append(f"{where}: available must be true or false")
    return {"available": item.get("available")}


def _channel(reader: _Reader, item: dict, where: str) -> dict[str, Any]:
    name = item.get("unique_name")
    if isinstance(name, str) and not re.fullmatch(r"[-a-zA-Z0-9_]+", name):
        reader.problems.append(f"{where}: unique_name must be a slug: {name!r}")
    return {"friendly_name": str(item.get("friendly_name") or "")[:100]}


def _queue(reader: _Reader, item: dict, where: str) -> dict[str, Any]:
    target = item.get("target_workers") or "1==1"
    if not isinstance(target, str):
        reader.problems.append(f"{where}: target_workers must be a string")
    elif error := expressions.check(target):
        reader.problems.append(f"{where}: target_workers: {error}")
    order = item.get("task_order") or TaskOrder.FIFO
    if order not in TaskOrder.values:
        reader.problems.append(f"{where}: task_order must be FIFO or LIFO")
    workers = reader.number(
        {"max_reserved_workers": 1, **item}, "max_reserved_workers", where, (1, 50)
    )
    return {
        "target_workers": target,
        "task_order": order,
        "max_reserved_workers": workers,
    }


def _renamed_queues(queues: list[Row]) -> tuple[set[str], dict[str, str]]:
    """Queue names once imported, and the local queues the import renames."""
    renamed = {r.existing.name: r.name for r in queues if r.existing}
    names = {
        renamed.get(n, n) for n in TaskQueue.objects.values_list("name", flat=True)
    }
    names |= {row.name for row in queues}
    return names, {old: new for old, new in renamed.items() if old != new}


def _queue_name(reader: _Reader, sid: str, queues: list[Row]) -> str | None:
    if sid in reader.mapping:
        return reader.mapping[sid]
    found = [row.name for row in queues if row.sid == sid]
    local = TaskQueue.objects.filter(sid=sid).first()
    return found[0] if found else local.name if local else None


def _configuration(reader: _Reader, item: dict, where: str, queues: list[Row]) -> dict:
    """The configuration with its `WQ...` queues named, checked like the admin's."""
    known = len(reader.problems)
    configuration = copy.deepcopy(reader.json_object(item, "configuration", where))
    if len(reader.problems) > known:  # not JSON: nothing more to say about it
        return configuration
    unmapped = []
    for path, target in queue_refs(configuration):
        if QUEUE_SID.fullmatch(target["queue"]):
            name = _queue_name(reader, target["queue"], queues)
            if name is None:
                unmapped.append(f"{path}.queue: unknown queue")
                reader.problems.append(
                    f"{where}: {path}.queue: unmapped queue {target['queue']!r} "
                    f"(in neither the export nor here: --map {target['queue']}=NAME)"
                )
            target["queue"] = name or target["queue"]
    try:
        parse_configuration(configuration, _renamed_queues(queues)[0])
    except ConfigurationError as exc:
        problems = [p for p in exc.problems if not p.startswith(tuple(unmapped))]
        reader.problems.extend(f"{where}: {problem}" for problem in problems)
    return configuration


def _workflows(reader: _Reader, queues: list[Row]) -> list[Row]:
    def read(reader: _Reader, item: dict, where: str) -> dict[str, Any]:
        timeout = {"task_reservation_timeout": 120, **item}
        return {
            "configuration": _configuration(reader, item, where, queues),
            "task_reservation_timeout": reader.number(
                timeout, "task_reservation_timeout", where, (1, 86400)
            ),
        }

    rows = reader.rows("workflows", "friendly_name", 100, read)
    reader.match(rows, Workflow, "name")
    renamed = _renamed_queues(queues)[1]
    others = Workflow.objects.exclude(
        pk__in=[r.existing.pk for r in rows if r.existing]
    )
    for workflow in others if renamed else []:
        for path, target in queue_refs(workflow.configuration):
            if target["queue"] in renamed:
                reader.problems.append(
                    f"workflow {workflow.name!r} (not in the export): {path}.queue "
                    f"is {target['queue']!r}, which this import renames to "
                    f"{renamed[target['queue']]!r}"
                )
    return rows


def _worker_channels(
    reader: _Reader, item: dict, where: str, channels: set[str]
) -> dict[str, tuple[int, bool | None]]:
    """Twilio's WorkerChannel rows: unique name → (configured capacity, available)."""
    found = {}
    for here, row in reader.items_of(item.get("channels"), f"{where}: channels"):
        name = row.get("task_channel_unique_name")
        if name not in channels:
            reader.problems.append(f"{here}: unknown task channel {name!r}")
            continue
        capacity = reader.number(row, "configured_capacity", here, (0, 50))
        found[name] = (capacity, reader.flag(row, "available", here))
    return found


def _workers(reader: _Reader, activities: set[str], channels: set[str]) -> list[Row]:
    def read(reader: _Reader, item: dict, where: str) -> dict[str, Any]:
        activity = item.get("activity_name")
        if activity is not None and activity not in activities:
            reader.problems.append(f"{where}: unknown activity {activity!r}")
        return {
            "attributes": reader.json_object(item, "attributes", where),
            "activity": activity,
            "channels": _worker_channels(reader, item, where, channels),
        }

    rows = reader.rows("workers", "friendly_name", 100, read)
    reader.match(rows, Worker, "name__iexact")
    return rows


def _workspace(reader: _Reader, activities: set[str]) -> dict[str, str | None]:
    roles = {}
    for _, raw in reader.items("workspace"):
        for role in ("default_activity", "timeout_activity"):
            name = raw.get(f"{role}_name")
            if name is not None and name not in activities:
                reader.problems.append(f"workspace: unknown {role} {name!r}")
            roles[role] = name
    return roles


# -- storing -----------------------------------------------------------------------


@dataclass
class _Plan:
    activities: list[Row]
    channels: list[Row]
    queues: list[Row]
    workflows: list[Row]
    workers: list[Row]
    workspace: dict[str, str | None]


def _activities(reader: _Reader) -> tuple[list[Row], set[str]]:
    """The export's activities, and every activity name known once imported."""
    rows = reader.rows("activities", "friendly_name", 64, _activity)
    for row in rows:
        row.sid = ""  # Activity has no sid column: matched by name
    reader.match(rows, Activity, "name")
    for row in rows:
        if row.existing and row.existing.available != row.fields["available"]:
            reader.problems.append(
                f"{row.where}: exists here with available="
                f"{str(row.existing.available).lower()}, fixed at its creation"
            )
    names = set(Activity.objects.values_list("name", flat=True))
    if not Workspace.objects.exists():
        names |= {name for name, _ in DEFAULT_ACTIVITIES}  # ensure_workspace's
    return rows, names | {row.name for row in rows}


def _read(data: Any, mapping: Mapping[str, str]) -> _Plan:
    reader = _Reader(data, mapping)
    for sid in mapping:
        if not QUEUE_SID.fullmatch(sid):
            reader.problems.append(f"--map {sid}: only queue ids (WQ...) are mapped")
    activities, activity_names = _activities(reader)
    channels = reader.rows("task_channels", "unique_name", 64, _channel)
    reader.match(channels, TaskChannel, "unique_name")
    queues = reader.rows("task_queues", "friendly_name", 100, _queue)
    reader.match(queues, TaskQueue, "name")
    channel_names = {r.name for r in channels}
    channel_names |= set(TaskChannel.objects.values_list("unique_name", flat=True))
    plan = _Plan(
        activities=activities,
        channels=channels,
        queues=queues,
        workflows=_workflows(reader, queues),
        workers=_workers(reader, activity_names, channel_names),
        workspace=_workspace(reader, activity_names),
    )
    if reader.problems:
        raise ImportProblems(reader.problems)
    return plan


def _save(row: Row, obj: models.Model, name_field: str) -> None:
    setattr(obj, name_field, row.name)
    obj.sid = row.sid or obj.sid  # type: ignore[attr-defined]
    for name, value in row.fields.items():
        setattr(obj, name, value)
    obj.save()


def _store_workspace(names: dict[str, str | None]) -> None:
    workspace = services.ensure_workspace()
    for role, name in names.items():
        if name is not None:
            setattr(workspace, role, Activity.objects.get(name=name))
    workspace.save()


def _store_worker(row: Row) -> None:
    """Through routing.services, so that each change is an event like any other."""
    attributes, activity = row.fields["attributes"], row.fields["activity"]
    channels, worker = row.fields["channels"], row.existing
    if worker is None:
        worker = services.create_worker(
            name=row.name,
            attributes=attributes,
            activity=activity,
            capacity={name: capacity for name, (capacity, _) in channels.items()},
        )
    else:
        if worker.attributes != attributes:
            services.set_worker_attributes(worker_id=worker.pk, attributes=attributes)
        if activity is not None and worker.activity.name != activity:
            services.set_worker_activity(worker_id=worker.pk, activity=activity)
    Worker.objects.filter(pk=worker.pk).update(name=row.name, sid=row.sid or worker.sid)
    for name, (capacity, available) in channels.items():
        services.set_worker_capacity(
            worker_id=worker.pk, channel=name, capacity=capacity, available=available
        )


def _store(plan: _Plan, summary: ImportSummary) -> None:
    services.ensure_workspace()
    for row in plan.activities:
        Activity.objects.get_or_create(name=row.name, defaults=row.fields)
        (summary.updated if row.existing else summary.created)["activities"] += 1
    _store_workspace(plan.workspace)
    stores: list[tuple[str, list[Row], type[models.Model], str]] = [
        ("task_channels", plan.channels, TaskChannel, "unique_name"),
        ("task_queues", plan.queues, TaskQueue, "name"),
        ("workflows", plan.workflows, Workflow, "name"),
    ]
    for kind, rows, model, name_field in stores:
        for row in rows:
            _save(row, row.existing or model(), name_field)
            (summary.updated if row.existing else summary.created)[kind] += 1
    for row in plan.workers:
        _store_worker(row)
        (summary.updated if row.existing else summary.created)["workers"] += 1


def import_taskrouter(
    *, data: Any, mapping: Mapping[str, str] | None = None
) -> ImportSummary:
    """Import a TaskRouter export (see the module's docstring) in one transaction.

    `mapping` names the local queue for a `WQ...` sid the export's workflows use;
    without it, a sid resolves to the export's queue with that sid, then to a
    local queue carrying it. Raises ImportProblems listing every problem found;
    nothing is stored then. Importing the same export again changes nothing.
    """
    summary = ImportSummary()
    with transaction.atomic():
        _store(_read(data, mapping or {}), summary)
    return summary
