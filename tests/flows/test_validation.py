"""Importing a Studio flow: every problem at once, each naming its state and
property; Twilio ids mapped to local objects; revisions; importflow/exportflow."""

import copy
import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from bots.demo import CHAT_CHANNEL_SID, SUPPORT_WORKFLOW_SID, load_demo_routing
from bots.flows.definition import InvalidFlow, validate
from bots.flows.importing import import_flow, local_refs
from bots.models import Execution, ExecutionStatus, Flow, FlowRevision
from routing.models import TaskChannel, Workflow
from tests.flows import chat, studio

pytestmark = pytest.mark.django_db

WW = "WW11111111111111111111111111111111"
TC = "TC11111111111111111111111111111111"
FW = "FW11111111111111111111111111111111"


def problems(raw: Any, mapping: dict[str, str] | None = None) -> list[str]:
    """What validation reports for `raw` ([] when it is valid)."""
    try:
        validate(raw, local_refs(mapping or {}))
    except InvalidFlow as exc:
        return exc.problems
    return []


def hello(*states: studio.State) -> dict[str, Any]:
    """A valid flow (Trigger → hello) with `states` added."""
    return studio.flow(studio.trigger("hello"), studio.send("hello", "Hola"), *states)


def props(state: studio.State, **changes: Any) -> studio.State:
    """`state` with properties changed; a value of None removes the property."""
    changed = copy.deepcopy(state)
    for key, value in changes.items():
        if value is None:
            changed["properties"].pop(key, None)
        else:
            changed["properties"][key] = value
    return changed


def reached(state: studio.State) -> dict[str, Any]:
    """A flow whose trigger leads straight to `state`."""
    return studio.flow(studio.trigger(state["name"]), state)


@pytest.fixture
def routing() -> None:
    load_demo_routing()


@pytest.fixture
def child_flow() -> Flow:
    child = studio.flow(
        studio.trigger(parent="done"),
        studio.set_variables("done", {"key": "a", "value": "1"}),
    )
    return import_flow(definition=child, name="child").flow


# Valid flows.


def test_the_demo_flow_is_valid_with_the_demo_routing(routing):
    from bots.demo import DEMO_FLOW

    assert problems(json.loads(DEMO_FLOW.read_text("utf-8"))) == []


@pytest.mark.parametrize(
    "definition",
    [
        hello(),
        studio.flow(
            studio.send("Get-Customer", "Hola"), studio.trigger("Get-Customer")
        ),
        hello(props(studio.ask("later", "¿Sí?"), timeout=3600)),
        hello(props(studio.send("extra", "Hola"), unknown_key={"any": "thing"})),
        {"initial_state": "Trigger", "states": hello()["states"]},
    ],
    ids=[
        "minimal",
        "hyphens, mixed case, any order",
        "integer timeout",
        "unknown property keys",
        "no description or flags",
    ],
)
def test_valid_flows_have_no_problems(definition):
    assert problems(definition) == []


# One problem, named by state and property.

BROKEN_LIQUID = "Hola {{ trigger.message.Body | }}"


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        (
            hello({**studio.send("odd", "x"), "type": "send-mesage"}),
            'state "odd": unknown widget type "send-mesage"',
        ),
        (
            studio.flow(studio.trigger("nowhere")),
            'state "Trigger": transition "incomingMessage": next "nowhere" is not '
            "a state",
        ),
        (
            studio.flow(studio.trigger("hello"), studio.send("hello", "Hi", sent="x")),
            'state "hello": transition "sent": next "x" is not a state',
        ),
        (
            hello(
                {
                    **studio.send("odd", "x"),
                    "transitions": [{"event": "delivered", "next": "hello"}],
                }
            ),
            'state "odd": unknown event "delivered" for send-message',
        ),
        (
            hello(studio.send("odd", "x"), studio.send("odd", "y")),
            'state "odd": the name is used twice',
        ),
        (
            {**hello(), "initial_state": "Start"},
            'initial_state "Start" is not a state',
        ),
    ],
    ids=[
        "unknown widget type",
        "dangling trigger next",
        "dangling widget next",
        "unknown event",
        "duplicate state names",
        "initial_state not a state",
    ],
)
def test_a_structural_problem_names_its_state(definition, expected):
    assert expected in problems(definition)


REDIRECT = {
    "name": "redirect",
    "type": "add-twiml-redirect",
    "transitions": [{"event": "return"}, {"event": "timeout"}, {"event": "fail"}],
    "properties": {"url": "https://example.com/twiml", "method": "POST"},
}


@pytest.mark.parametrize(
    ("state", "missing"),
    [
        (props(studio.send("w", "Hola"), body=None), "body"),
        (props(studio.send("w", "Hola"), body=""), "body"),
        (props(studio.ask("w", "¿Sí?"), body=None), "body"),
        (
            props(studio.send("w", "Hola"), body=None, message_type="content_template"),
            "content_sid",
        ),
        (props(studio.split("w", "{{trigger.message.Body}}"), input=""), "input"),
        (studio.set_variables("w"), "variables"),
        (props(studio.subflow("w", FW), flow_sid=""), "flow_sid"),
        (
            props(
                studio.function("w", "https://x.twil.io/f"), url=None, function_sid=None
            ),
            "url",
        ),
        (props(studio.http("w", "https://example.com"), url=""), "url"),
        (props(studio.http("w", "https://example.com"), method=None), "method"),
        (props(studio.flex("w", workflow=WW, channel=TC), workflow=""), "workflow"),
        (props(studio.flex("w", workflow=WW, channel=TC), channel=None), "channel"),
        (props({**REDIRECT, "name": "w"}, url=""), "url"),
    ],
    ids=[
        "send-message body",
        "send-message empty body",
        "send-and-wait-for-reply body",
        "content template sid",
        "split-based-on input",
        "set-variables variables",
        "run-subflow flow_sid",
        "run-function url",
        "make-http-request url",
        "make-http-request method",
        "send-to-flex workflow",
        "send-to-flex channel",
        "add-twiml-redirect url",
    ],
)
def test_a_missing_required_property_is_named(routing, state, missing):
    assert f'state "w": property "{missing}" is required' in problems(reached(state))


def test_a_send_message_with_only_media_needs_no_body():
    state = props(studio.send("w", ""), media_url="https://example.com/a.jpg")

    assert problems(reached(state)) == []


def test_a_variable_without_a_key_is_named_by_its_position():
    state = studio.set_variables("w", {"key": "ok", "value": "1"}, {"value": "no key"})

    assert problems(reached(state)) == ['state "w": variable 2: has no key']


@pytest.mark.parametrize(
    ("state", "where"),
    [
        (studio.send("w", BROKEN_LIQUID), 'property "body"'),
        (
            studio.set_variables("w", {"key": "k", "value": "{% if x %}open"}),
            'property "variables[0].value"',
        ),
        (
            studio.split("w", "{{trigger.message.Body}}", ("equal_to", "{{ x", None)),
            "condition 1",
        ),
        (studio.split("w", "{{ x | nofilter }}"), 'property "input"'),
        (
            props(studio.flex("w", workflow=WW, channel=TC), attributes="{{ x"),
            'property "attributes"',
        ),
    ],
    ids=[
        "send-message body",
        "set-variables value",
        "condition value",
        "unknown filter in split input",
        "send-to-flex attributes",
    ],
)
def test_liquid_that_does_not_parse_is_named_where_it_is(routing, state, where):
    found = problems(reached(state), {WW: "Support", TC: "chat"})

    assert [p for p in found if p.startswith(f'state "w": {where}: Liquid')], found


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("equals", "1", 'condition 1: unknown operator "equals"'),
        ("regex", "(unclosed", "condition 1: regex does not compile: "),
        ("regex", "[a-", "condition 1: regex does not compile: "),
    ],
)
def test_bad_conditions_are_named_by_number(operator, value, expected):
    state = studio.split("w", "{{trigger.message.Body}}", (operator, value, None))

    [problem] = problems(reached(state))
    assert problem.startswith(f'state "w": {expected}')


def test_conditions_are_numbered_among_the_match_transitions():
    state = studio.split(
        "w",
        "{{trigger.message.Body}}",
        ("equal_to", "1", None),
        ("regex", "(?=.*hola).*", None),
        ("equals", "3", None),
        no_match=None,
    )

    assert problems(reached(state)) == [
        'state "w": condition 3: unknown operator "equals"'
    ]


def test_a_regex_with_liquid_is_checked_only_when_it_runs():
    state = studio.split(
        "w", "{{trigger.message.Body}}", ("regex", "{{flow.variables.pattern}}", None)
    )

    assert problems(reached(state)) == []


# Twilio ids.


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (
            studio.flex("w", workflow=WW, channel=CHAT_CHANNEL_SID),
            f'state "w": workflow "{WW}" is not mapped to a local workflow',
        ),
        (
            studio.flex("w", workflow=SUPPORT_WORKFLOW_SID, channel=TC),
            f'state "w": channel "{TC}" is not mapped to a local channel',
        ),
        (
            studio.subflow("w", FW),
            f'state "w": flow_sid "{FW}" is not mapped to a local flow',
        ),
        (
            studio.function("w", "https://legacy-1234.twil.io/not-ported"),
            'state "w": function "https://legacy-1234.twil.io/not-ported" is not '
            "registered",
        ),
    ],
    ids=["workflow", "task channel", "subflow", "function"],
)
def test_an_unmapped_twilio_id_is_a_problem(routing, state, expected):
    assert problems(reached(state)) == [expected]


def test_ids_are_mapped_by_an_explicit_mapping(child_flow):
    Workflow.objects.create(name="Ventas")
    TaskChannel.objects.create(unique_name="sms")
    definition = studio.flow(
        studio.trigger("sub"),
        studio.subflow("sub", FW, completed="fn"),
        studio.function(
            "fn", "https://legacy-1234.twil.io/cancelar-cita", success="flex"
        ),
        studio.flex("flex", workflow=WW, channel=TC),
    )
    mapping = {
        WW: "Ventas",
        TC: "sms",
        FW: "child",
        "https://legacy-1234.twil.io/cancelar-cita": "cancel-appointment",
    }

    revision = import_flow(definition=definition, name="mapped", mapping=mapping)

    assert revision.mapping == mapping


def test_a_function_is_found_by_the_last_segment_of_its_url():
    state = studio.function("w", "https://appointments-1234.twil.io/cancel-appointment")

    revision = import_flow(definition=reached(state), name="fn")

    assert revision.mapping == {
        "https://appointments-1234.twil.io/cancel-appointment": "cancel-appointment"
    }


def test_a_function_sid_can_be_mapped_instead_of_its_url():
    state = studio.function("w", "https://legacy-1234.twil.io/otro-nombre")
    sid = state["properties"]["function_sid"]

    assert problems(reached(state), {sid: "cancel-appointment"}) == []


def test_workflow_and_channel_are_found_by_their_twilio_sid_without_a_map(routing):
    state = studio.flex("w", workflow=SUPPORT_WORKFLOW_SID, channel=CHAT_CHANNEL_SID)

    revision = import_flow(definition=reached(state), name="flex")

    assert revision.mapping == {
        SUPPORT_WORKFLOW_SID: "Support",
        CHAT_CHANNEL_SID: "chat",
    }


def test_workflow_and_channel_are_found_by_their_local_names():
    Workflow.objects.create(name="Support")
    TaskChannel.objects.create(unique_name="chat")

    assert problems(reached(studio.flex("w", workflow="Support", channel="chat"))) == []


def test_a_mapping_to_a_missing_local_object_is_still_unmapped(routing):
    state = studio.flex("w", workflow=WW, channel=CHAT_CHANNEL_SID)

    assert problems(reached(state), {WW: "Nobody"}) == [
        f'state "w": workflow "{WW}" is not mapped to a local workflow'
    ]


# Voice widgets.


def test_a_voice_widget_reachable_from_a_messaging_trigger_is_a_problem():
    definition = studio.flow(
        studio.trigger("greet"),
        studio.send("greet", "Hola", sent="say"),
        studio.voice("say", next="record"),
        studio.voice("record", "record-voicemail"),
    )

    assert problems(definition) == [
        'state "say": say-play is a voice widget: not supported in a messaging flow',
        'state "record": record-voicemail is a voice widget: not supported in a '
        "messaging flow",
    ]


def test_a_voice_widget_only_the_call_trigger_reaches_is_accepted():
    definition = studio.flow(
        studio.trigger("hello", call="say"),
        studio.send("hello", "Hola"),
        studio.voice("say"),
    )

    assert problems(definition) == []
    assert import_flow(definition=definition, name="mixed").number == 1


# Every problem at once.


def test_every_problem_is_reported_at_once_and_nothing_is_stored(routing):
    definition = studio.flow(
        studio.trigger("menu"),
        studio.split(
            "menu",
            "{{trigger.message.Body}}",
            ("equals", "1", "cancel"),
            ("regex", "(", "agent"),
            no_match="gone",
        ),
        studio.send("cancel", "Hola {{ x | }}"),
        studio.flex("agent", workflow=WW, channel=TC),
        {**studio.send("mystery", "x"), "type": "teleport"},
        studio.function("fn", "https://legacy-1234.twil.io/not-ported"),
    )

    with pytest.raises(InvalidFlow) as raised:
        import_flow(definition=definition, name="broken")

    found = raised.value.problems
    assert len(found) == 8, found
    for expected in [
        'state "menu": transition "noMatch": next "gone" is not a state',
        'state "menu": condition 1: unknown operator "equals"',
        'state "menu": condition 2: regex does not compile: ',
        'state "cancel": property "body": Liquid does not parse: ',
        f'state "agent": workflow "{WW}" is not mapped to a local workflow',
        f'state "agent": channel "{TC}" is not mapped to a local channel',
        'state "mystery": unknown widget type "teleport"',
        'state "fn": function "https://legacy-1234.twil.io/not-ported" is not ',
    ]:
        assert any(p.startswith(expected) for p in found), (expected, found)
    assert str(raised.value) == "\n".join(found)
    assert (Flow.objects.count(), FlowRevision.objects.count()) == (0, 0)


@pytest.mark.parametrize(
    "raw",
    [None, [], "flow", 3, {}, {"states": {}}, {"states": "Trigger"}],
    ids=["null", "list", "string", "number", "empty", "states object", "states str"],
)
def test_input_that_is_not_a_flow_object_is_one_problem(raw):
    with pytest.raises(InvalidFlow) as raised:
        import_flow(definition=raw, name="junk")

    assert raised.value.problems == [
        'the definition must be an object with a "states" list'
    ]
    assert Flow.objects.count() == 0


def test_a_state_that_is_not_an_object_is_named_by_position():
    definition = hello()
    definition["states"].append("Trigger")

    assert problems(definition) == ["state 3: has no name"]


@pytest.mark.parametrize(
    "broken",
    [
        {"transitions": None},
        {"transitions": "sent"},
        {"transitions": ["sent"]},
    ],
    ids=["transitions null", "transitions a string", "a transition a string"],
)
def test_malformed_transitions_are_a_problem_not_a_crash(broken):
    definition = hello()
    definition["states"][1].update(broken)

    found = problems(definition)

    assert [p for p in found if p.startswith('state "hello": ')], found


def test_a_malformed_condition_is_a_problem_not_a_crash():
    state = studio.split("w", "{{trigger.message.Body}}", ("equal_to", "1", None))
    state["transitions"][1]["conditions"] = ["equal_to 1"]

    found = problems(reached(state))

    assert [p for p in found if p.startswith('state "w": ')], found


def test_a_name_that_cannot_be_a_slug_is_refused():
    with pytest.raises(InvalidFlow):
        import_flow(definition=hello(), name="¿?")


# Revisions.


def test_importing_again_publishes_the_next_revision():
    first = import_flow(definition=hello(), name="bot")
    changed = hello()
    changed["states"][1]["properties"]["body"] = "Hola otra vez"

    second = import_flow(definition=changed, name="bot")

    flow = Flow.objects.get(name="bot")
    assert (first.number, second.number) == (1, 2)
    assert flow.published == second
    assert first.definition == hello()


def test_a_draft_is_stored_without_being_published():
    first = import_flow(definition=hello(), name="bot")

    draft = import_flow(definition=hello(), name="bot", publish=False)

    assert draft.number == 2
    assert Flow.objects.get(name="bot").published == first


def greeter(version: str) -> dict[str, Any]:
    return studio.flow(
        studio.trigger("ask"),
        studio.ask("ask", f"{version}: ¿cómo te llamas?", reply="greet"),
        studio.send("greet", f"{version}: hola {{{{widgets.ask.inbound.Body}}}}"),
    )


def test_an_execution_keeps_running_the_revision_it_started_on(
    twilio_post, whatsapp_sender
):
    chat.bind(whatsapp_sender, greeter("v1"), name="greeter")
    chat.say(twilio_post, "hola")
    started = Execution.objects.get()
    assert started.status == ExecutionStatus.WAITING

    revision = import_flow(definition=greeter("v2"), name="greeter")
    assert revision.number == 2
    chat.say(twilio_post, "Ana")

    started.refresh_from_db()
    assert started.revision.number == 1
    assert started.status == ExecutionStatus.ENDED
    assert chat.bot_bodies() == ["v1: ¿cómo te llamas?", "v1: hola Ana"]

    chat.say(twilio_post, "hola de nuevo")

    assert chat.bot_bodies()[-1] == "v2: ¿cómo te llamas?"
    assert Execution.objects.order_by("pk").last().revision == revision


# importflow and exportflow.


@pytest.fixture
def flow_file(tmp_path):
    def write(definition: Any, name: str = "appointments.json"):
        path = tmp_path / name
        path.write_text(json.dumps(definition, ensure_ascii=False), encoding="utf-8")
        return path

    return write


def test_importflow_prints_each_problem_and_fails(flow_file):
    definition = studio.flow(
        studio.trigger("nowhere"),
        studio.split("menu", "{{trigger.message.Body}}", ("equals", "1", None)),
    )
    stderr = io.StringIO()

    with pytest.raises(CommandError) as raised:
        call_command("importflow", str(flow_file(definition)), stderr=stderr)

    assert stderr.getvalue().splitlines() == [
        'state "Trigger": transition "incomingMessage": next "nowhere" is not a state',
        'state "menu": condition 1: unknown operator "equals"',
    ]
    assert "2 problem(s)" in str(raised.value)
    assert raised.value.returncode != 0  # the exit status from the command line
    assert Flow.objects.count() == 0


def test_importflow_maps_ids_and_publishes(flow_file):
    Workflow.objects.create(name="Support")
    TaskChannel.objects.create(unique_name="chat")
    definition = reached(studio.flex("w", workflow=WW, channel=TC))
    stdout = io.StringIO()

    call_command(
        "importflow",
        str(flow_file(definition, "handoff.json")),
        "--map",
        f"{WW}=Support",
        "--map",
        f"{TC}=chat",
        stdout=stdout,
    )

    assert stdout.getvalue().strip() == "flow handoff revision 1 published"
    published = Flow.objects.get(name="handoff").published
    assert published.mapping == {WW: "Support", TC: "chat"}


def test_importflow_refuses_a_bad_map_option(flow_file):
    with pytest.raises(CommandError, match="TWILIO_ID=LOCAL_NAME"):
        call_command("importflow", str(flow_file(hello())), "--map", "WW123")


def test_exportflow_prints_the_imported_json_back(routing, flow_file):
    from bots.demo import DEMO_FLOW

    definition = json.loads(DEMO_FLOW.read_text("utf-8"))
    call_command("importflow", str(flow_file(definition)), stdout=io.StringIO())
    stdout = io.StringIO()

    call_command("exportflow", "appointments", stdout=stdout)

    assert json.loads(stdout.getvalue()) == definition


def test_exportflow_prints_an_older_revision_on_request():
    import_flow(definition=greeter("v1"), name="greeter")
    import_flow(definition=greeter("v2"), name="greeter")
    stdout = io.StringIO()

    call_command("exportflow", "greeter", "--revision", "1", stdout=stdout)

    assert json.loads(stdout.getvalue()) == greeter("v1")


def test_exportflow_of_an_unknown_flow_fails():
    with pytest.raises(CommandError, match="no flow named"):
        call_command("exportflow", "nope")
