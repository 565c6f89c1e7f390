"""Importing a TaskRouter setup exported from Twilio: `manage.py importtaskrouter`.

The fixture is an export in the shapes of Twilio's REST resources (sids, JSON
strings for attributes and configurations, the fields we do not use)."""

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from routing import services
from routing.importing import ImportProblems, import_taskrouter, parse_mapping
from routing.models import (
    Activity,
    Event,
    Reservation,
    TaskChannel,
    TaskQueue,
    Worker,
    WorkerChannel,
    Workflow,
    Workspace,
)

pytestmark = pytest.mark.django_db

EXPORT = Path(__file__).parents[1] / "fixtures" / "taskrouter" / "support_export.json"
SPANISH = "WQ000000000000000000000000005b0001"
VIP = "WQ000000000000000000000000005b0004"
ELSEWHERE = "WQ0000000000000000000000000000ff01"
MODELS = (Activity, TaskChannel, TaskQueue, Workflow, Worker, WorkerChannel, Workspace)


def export() -> dict[str, Any]:
    return json.loads(EXPORT.read_text())


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def problems_of(data: dict[str, Any], mapping: dict[str, str] | None = None) -> list:
    with pytest.raises(ImportProblems) as raised:
        import_taskrouter(data=data, mapping=mapping)
    return raised.value.problems


def named(section: list[dict], name: str) -> dict[str, Any]:
    return next(item for item in section if item["friendly_name"] == name)


def test_an_export_is_imported_with_its_sids_and_queue_names():
    summary = import_taskrouter(data=export())

    assert summary.lines() == [
        "activities: 5 created, 0 updated",
        "task_channels: 4 created, 0 updated",
        "task_queues: 4 created, 0 updated",
        "workflows: 2 created, 0 updated",
        "workers: 3 created, 0 updated",
    ]
    assert Activity.objects.get(name="Training").available is False
    assert TaskChannel.objects.get(unique_name="chat").sid == (
        "TC000000000000000000000000c4a00003"
    )
    vip = TaskQueue.objects.get(name="VIP")
    assert (vip.sid, vip.task_order, vip.max_reserved_workers) == (VIP, "LIFO", 2)
    assert vip.target_workers == "level >= 3 AND languages HAS 'es'"
    support = Workflow.objects.get(name="Support")
    assert support.sid == "WW000000000000000000000000005e0001"
    assert support.task_reservation_timeout == 60
    vip_filter = support.configuration["task_routing"]["filters"][0]
    assert [t["queue"] for t in vip_filter["targets"]] == ["VIP", "Spanish", "Everyone"]
    assert vip_filter["targets"][1]["expression"] == "worker.level >= task.level"
    assert support.configuration["task_routing"]["default_filter"] == {
        "queue": "Everyone"
    }


def test_imported_workers_keep_attributes_activity_and_channel_capacity():
    import_taskrouter(data=export())

    cara = Worker.objects.get(name="Cara")
    assert cara.sid == "WK000000000000000000000000003a0003"
    assert cara.attributes == {
        "languages": ["es"],
        "level": 2,
        "skills": {"billing": True},
    }
    assert cara.activity.name == "Break"
    channels = {
        row.channel.unique_name: (row.capacity, row.available)
        for row in cara.channels.select_related("channel")
    }
    assert channels == {
        "chat": (1, True),
        "sms": (3, False),
        "default": (0, True),
        "voice": (0, True),
    }
    workspace = Workspace.objects.get()
    assert workspace.default_activity.name == workspace.timeout_activity.name
    assert workspace.timeout_activity.name == "Offline"


def test_the_imported_setup_routes_a_task_as_it_did_in_twilio():
    import_taskrouter(data=export())

    task = services.create_task(
        workflow="Support",
        channel="chat",
        attributes={"language": "es", "vip": True, "level": 2},
    )

    assert (task.queue.name, task.routing_priority, task.status) == (
        "VIP",
        20,
        "reserved",
    )
    assert Reservation.objects.get(task=task).worker.name == "ana"


def test_importing_the_same_export_again_updates_in_place_and_records_nothing():
    import_taskrouter(data=export())
    before, events = counts(), Event.objects.count()

    summary = import_taskrouter(data=export())

    assert counts() == before
    assert Event.objects.count() == events
    assert summary.lines()[2] == "task_queues: 0 created, 4 updated"
    assert summary.lines()[4] == "workers: 0 created, 3 updated"


def test_a_reimport_renames_and_changes_what_it_matches_by_sid():
    import_taskrouter(data=export())
    data = export()
    spanish = named(data["task_queues"], "Spanish")
    spanish.update(friendly_name="Español", target_workers="languages HAS 'es-419'")
    for workflow in data["workflows"]:
        workflow["configuration"] = workflow["configuration"].replace(
            "Spanish", "Español"
        )
    ana = named(data["workers"], "ana")
    ana.update(activity_name="Break", attributes=json.dumps({"languages": ["fr"]}))
    ana["channels"][2]["configured_capacity"] = 5  # chat

    import_taskrouter(data=data)

    queue = TaskQueue.objects.get(sid=SPANISH)
    assert (queue.name, queue.target_workers) == ("Español", "languages HAS 'es-419'")
    assert not TaskQueue.objects.filter(name="Spanish").exists()
    targets = Workflow.objects.get(name="Support").configuration["task_routing"]
    assert targets["filters"][1]["targets"][0]["queue"] == "Español"
    worker = Worker.objects.get(name="ana")
    assert worker.activity.name == "Break"
    assert worker.attributes == {"languages": ["fr"]}
    assert worker.channels.get(channel__unique_name="chat").capacity == 5
    changes = Event.objects.filter(worker=worker).values_list("type", flat=True)
    assert set(changes) == {
        "worker.activity.update",
        "worker.attributes.update",
        "worker.capacity.update",
    }


def test_a_queue_sid_can_be_mapped_to_a_local_queue():
    services.ensure_workspace()
    TaskQueue.objects.create(name="Overflow", target_workers="1==1")
    data = export()
    support = named(data["workflows"], "Support")
    configuration = json.loads(support["configuration"])
    configuration["task_routing"]["default_filter"]["queue"] = ELSEWHERE
    support["configuration"] = configuration  # an object is accepted too

    import_taskrouter(data=data, mapping={ELSEWHERE: "Overflow", VIP: "Everyone"})

    routing = Workflow.objects.get(name="Support").configuration["task_routing"]
    assert routing["default_filter"]["queue"] == "Overflow"
    assert routing["filters"][0]["targets"][0]["queue"] == "Everyone"


def test_an_unmapped_queue_sid_is_named_and_nothing_is_stored():
    data = export()
    support = named(data["workflows"], "Support")
    support["configuration"] = support["configuration"].replace(VIP, ELSEWHERE)

    problems = problems_of(data)

    assert problems == [
        "workflows[0] 'Support': task_routing.filters[0].targets[0].queue: unmapped "
        f"queue '{ELSEWHERE}' (in neither the export nor here: --map "
        f"{ELSEWHERE}=NAME)"
    ]
    assert set(counts().values()) == {0}


def test_a_mapping_to_a_queue_that_does_not_exist_is_refused():
    problems = problems_of(export(), mapping={VIP: "Nowhere"})

    assert problems == [
        "workflows[0] 'Support': task_routing.filters[0].targets[0].queue: unknown "
        "queue 'Nowhere'"
    ]


def test_invalid_expressions_are_reported_with_their_position():
    data = export()
    named(data["task_queues"], "VIP")["target_workers"] = "level >= 3 AND"
    support = named(data["workflows"], "Support")
    support["configuration"] = support["configuration"].replace(
        "worker.level >= task.level", "worker.level >> task.level"
    )

    problems = problems_of(data)

    assert problems == [
        "task_queues[3] 'VIP': target_workers: unexpected end of expression at "
        "position 14: level >= 3 AND",
        "workflows[0] 'Support': task_routing.filters[0].targets[1].expression: "
        'unexpected token ">" at position 14: worker.level >> task.level',
    ]


def test_every_problem_is_reported_and_nothing_is_stored():
    data = export()
    data["activities"][0]["available"] = "no"
    named(data["task_queues"], "English")["max_reserved_workers"] = 0
    named(data["workflows"], "Callbacks")["configuration"] = "{not json"
    named(data["workers"], "ben")["attributes"] = "[1, 2]"
    named(data["workers"], "Cara")["activity_name"] = "Lunch"

    problems = problems_of(data)

    assert len(problems) == 5, problems
    assert set(counts().values()) == {0}
    assert Event.objects.count() == 0


def table(*rows: tuple[str, Any, str]) -> Any:
    return pytest.mark.parametrize(
        ("change", "value", "problem"), rows, ids=[r[2] for r in rows]
    )


def _set(data: dict, path: str, value: Any) -> None:
    """`task_queues.VIP.task_order` = value (rows found by friendly_name)."""
    section, name, key = path.split(".")
    row = named(data[section], name) if name != "-" else data[section]
    row[key] = value


@table(
    ("task_queues.VIP.task_order", "RANDOM", "task_order must be FIFO or LIFO"),
    ("task_queues.VIP.sid", SPANISH, "same sid as task_queues[0] 'Spanish'"),
    ("task_queues.VIP.friendly_name", "Spanish", "same name as task_queues[0]"),
    ("workflows.Support.task_reservation_timeout", 0, "from 1 to 86400"),
    ("workflows.Callbacks.configuration", "{}", "task_routing: must be an object"),
    ("workflows.Callbacks.configuration", "[]", "configuration must be a JSON object"),
    ("workers.ben.friendly_name", "ANA", "same name as workers[0] 'ana'"),
    ("workers.ben.attributes", "[1]", "attributes must be a JSON object"),
    ("workers.ben.channels", [{"task_channel_unique_name": "fax"}], "'fax'"),
    ("task_channels.Chat.unique_name", "live chat", "must be a slug"),
    ("workspace.-.timeout_activity_name", "Gone", "unknown timeout_activity 'Gone'"),
)
def test_a_bad_field_is_named(change: str, value: Any, problem: str):
    data = export()
    _set(data, change, value)

    problems = problems_of(data)

    assert any(problem in found for found in problems), problems


def test_an_activity_keeps_the_availability_it_was_created_with():
    services.ensure_workspace()  # Break: unavailable
    data = export()
    named(data["activities"], "Break")["available"] = True

    problems = problems_of(data)

    assert problems == [
        "activities[3] 'Break': exists here with available=false, fixed at its creation"
    ]


def test_renaming_a_queue_a_local_workflow_routes_to_is_refused():
    import_taskrouter(data=export())
    Workflow.objects.create(
        name="Local",
        configuration={"task_routing": {"default_filter": {"queue": "Spanish"}}},
    )
    data = export()
    named(data["task_queues"], "Spanish")["friendly_name"] = "Castellano"
    for workflow in data["workflows"]:
        workflow["configuration"] = workflow["configuration"].replace(
            "Spanish", "Castellano"
        )

    problems = problems_of(data)

    assert problems == [
        "workflow 'Local' (not in the export): task_routing.default_filter.queue is "
        "'Spanish', which this import renames to 'Castellano'"
    ]
    assert TaskQueue.objects.filter(name="Spanish").exists()


def test_the_command_prints_the_summary(capsys):
    call_command("importtaskrouter", str(EXPORT))

    out = capsys.readouterr().out
    assert "workers: 3 created, 0 updated" in out
    assert Worker.objects.count() == 3


def test_the_command_fails_listing_every_problem(tmp_path, capsys):
    data = export()
    support = named(data["workflows"], "Support")
    support["configuration"] = support["configuration"].replace(SPANISH, ELSEWHERE)
    path = tmp_path / "export.json"
    path.write_text(json.dumps(data))

    with pytest.raises(CommandError, match="2 problem\\(s\\); nothing stored"):
        call_command("importtaskrouter", str(path))

    err = capsys.readouterr().err
    assert "task_routing.filters[0].targets[1].queue: unmapped" in err
    assert "task_routing.filters[1].targets[0].queue: unmapped" in err
    assert Workflow.objects.count() == 0


def test_the_command_maps_queue_ids_given_with_map(tmp_path, capsys):
    services.ensure_workspace()
    TaskQueue.objects.create(name="Elsewhere", target_workers="1==1")
    data = export()
    support = named(data["workflows"], "Support")
    support["configuration"] = support["configuration"].replace(VIP, ELSEWHERE)
    path = tmp_path / "export.json"
    path.write_text(json.dumps(data))

    call_command("importtaskrouter", str(path), "--map", f"{ELSEWHERE}=Elsewhere")

    routing = Workflow.objects.get(name="Support").configuration["task_routing"]
    assert routing["filters"][0]["targets"][0]["queue"] == "Elsewhere"
    assert "workflows: 2 created, 0 updated" in capsys.readouterr().out


@pytest.mark.parametrize("item", ["WQ123", "=Spanish", "WQ1="])
def test_a_malformed_map_is_refused(item: str):
    with pytest.raises(ValueError, match="--map takes"):
        parse_mapping([item])


def test_a_map_key_that_is_no_queue_id_is_refused():
    problems = problems_of(export(), mapping={"WW123": "Support"})

    assert problems == ["--map WW123: only queue ids (WQ...) are mapped"]
