"""Flows on the real server path: signed webhooks in, the inbound job, the engine,
replies stored and delivered through the locmem backend, timeouts fired by beat's
sweep, handoffs to routing."""

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone

from bots.demo import (
    CHAT_CHANNEL_SID,
    SUPPORT_WORKFLOW_SID,
    load_demo_flow,
    load_demo_routing,
)
from bots.flows import engine
from bots.flows.functions import call_function, flow_function
from bots.flows.importing import import_flow
from bots.jobs import sweep_messages
from bots.models import (
    Conversation,
    Execution,
    ExecutionStatus,
    ExecutionStep,
    Message,
    Phase,
)
from routing.models import Task
from tests.flows import chat, studio
from tests.flows.chat import CUSTOMER, OUR_NUMBER

pytestmark = pytest.mark.django_db

# Functions registered for these tests, as a project's flow_functions.py would.
released = threading.Event()


@flow_function("test-greet")
def greet(context, event: dict[str, Any]) -> dict[str, Any]:
    return {"greeting": f"hola {event['name']}", "visits": 3}


@flow_function("test-plain")
def plain(context, event: dict[str, Any]) -> str:
    return "just text"


@flow_function("test-raise")
def explode(context, event: dict[str, Any]) -> None:
    raise LookupError("no such customer")


counter = {"runs": 0}


@flow_function("test-count")
def count(context, event: dict[str, Any]) -> str:
    """Succeeds until its `upto`-th call, which fails."""
    counter["runs"] += 1
    if counter["runs"] >= int(event["upto"]):
        raise RuntimeError("enough")
    return str(counter["runs"])


@flow_function("test-hang")
def hang(context, event: dict[str, Any]) -> str:
    released.wait(timeout=5)
    return "too late"


@pytest.fixture
def bot(whatsapp_sender, outbox):
    """`bot(definition)`: the flow that answers our WhatsApp number."""
    load_demo_routing()

    def bind(definition: dict[str, Any], **kwargs: Any) -> None:
        chat.bind(whatsapp_sender, definition, **kwargs)

    return bind


@pytest.fixture
def say(twilio_post):
    def send(body: str, **fields: str) -> Message:
        return chat.say(twilio_post, body, **fields)

    return send


def execution() -> Execution:
    """The one execution of the test."""
    return Execution.objects.get()


def echo(body: str) -> dict[str, Any]:
    """Trigger → a send-message of `body`."""
    return studio.flow(studio.trigger("answer"), studio.send("answer", body))


# Replies reach the customer.


def test_the_demo_flow_answers_through_the_outbox(whatsapp_sender, say, outbox):
    load_demo_routing()
    load_demo_flow()

    say("hola")
    first = chat.deliver_pending()
    say("1")
    say("1032456789")
    rest = chat.deliver_pending()

    assert [(m.from_address, m.to_address) for m in first + rest] == [
        (OUR_NUMBER, CUSTOMER)
    ] * 3
    assert first[0].body.startswith("Hola Lucía Gómez, soy el asistente de citas.")
    assert "número de documento" in rest[0].body
    assert rest[1].body == (
        "Listo: cancelamos tu cita del 2026-12-03 10:30 con Dra. Ramírez."
    )
    assert execution().status == ExecutionStatus.ENDED
    assert execution().end_reason == "flow end"


def test_a_reply_is_stored_as_a_bot_message_in_the_conversation(bot, say):
    bot(echo("Hola {{trigger.message.ProfileName}}"))

    inbound = say("hola")

    reply = Message.objects.get(author="bot")
    assert reply.body == "Hola Lucía Gómez"
    assert reply.conversation == inbound.conversation
    assert execution().conversation == inbound.conversation


def test_a_sender_without_a_flow_starts_nothing(whatsapp_sender, say):
    say("hola")

    assert Execution.objects.count() == 0
    assert chat.bot_bodies() == []


# Waiting for a reply.


def ask_name(**kwargs: Any) -> dict[str, Any]:
    return studio.flow(
        studio.trigger("ask"),
        studio.ask("ask", "¿Cómo te llamas?", reply="greet", timeout="late", **kwargs),
        studio.send(
            "greet",
            "Hola {{widgets.ask.inbound.Body}} ({{widgets.ask.inbound.MessageSid}}), "
            "te pregunté: {{widgets.ask.outbound.Body}}",
        ),
        studio.send("late", "Se acabó el tiempo"),
    )


def test_a_waiting_execution_is_resumed_by_the_next_message(bot, say):
    bot(ask_name())

    say("hola")
    waiting = execution()
    assert (waiting.status, waiting.waiting_widget) == ("waiting", "ask")
    answer = say("Ana")

    assert Execution.objects.count() == 1
    ended = execution()
    assert ended.status == ExecutionStatus.ENDED
    assert ended.last_input_id == answer.pk
    assert chat.bot_bodies() == [
        "¿Cómo te llamas?",
        f"Hola Ana ({answer.provider_sid}), te pregunté: ¿Cómo te llamas?",
    ]


def test_a_conversation_has_one_live_execution_at_a_time(bot, say):
    bot(
        studio.flow(
            studio.trigger("one"),
            studio.ask("one", "1?", reply="two"),
            studio.ask("two", "2?", reply="three"),
            studio.send("three", "fin"),
        )
    )

    for body in ["hola", "a", "b", "otra vez"]:
        say(body)
        assert Execution.objects.filter(status__in=["active", "waiting"]).count() <= 1

    assert Execution.objects.count() == 2
    assert chat.bot_bodies() == ["1?", "2?", "fin", "1?"]


def test_an_execution_left_running_by_a_crash_is_stopped_and_a_new_one_starts(bot, say):
    bot(ask_name())
    say("hola")
    Execution.objects.update(status=ExecutionStatus.ACTIVE)

    say("hola otra vez")

    old, new = Execution.objects.order_by("pk")
    assert (old.status, old.end_reason) == (ExecutionStatus.FAILED, "interrupted")
    assert new.status == ExecutionStatus.WAITING


def test_inbound_webhook_fields_are_readable_from_the_trigger_and_the_reply(bot, say):
    bot(
        studio.flow(
            studio.trigger("ask"),
            studio.ask(
                "ask", "{{trigger.message.WaId}} {{flow.channel.address}}", reply="show"
            ),
            studio.send(
                "show",
                "{{widgets.ask.inbound.Body}}|{{widgets.ask.inbound.From}}|"
                "{{widgets.ask.inbound.NumMedia}}|{{widgets.ask.inbound.MediaUrl0}}|"
                "{{contact.channel.address}}",
            ),
        )
    )

    say("hola")
    say("foto", NumMedia="1", MediaUrl0="https://example.com/a.jpg")

    assert chat.bot_bodies() == [
        f"573245634749 {OUR_NUMBER}",
        f"foto|{CUSTOMER}|1|https://example.com/a.jpg|{CUSTOMER}",
    ]


def test_the_reply_timeout_fires_from_the_sweep_once_due_and_not_before(bot, say):
    bot(ask_name(seconds="600"))
    say("hola")
    waiting = execution()
    expected = timezone.now() + timedelta(seconds=600)
    assert abs(waiting.wait_deadline - expected) < timedelta(seconds=30)

    assert sweep_messages()["timeouts"] == 0
    assert execution().status == ExecutionStatus.WAITING

    Execution.objects.update(wait_deadline=timezone.now() - timedelta(seconds=1))
    assert sweep_messages()["timeouts"] == 1

    assert chat.bot_bodies() == ["¿Cómo te llamas?", "Se acabó el tiempo"]
    ended = execution()
    assert (ended.status, ended.wait_deadline) == (ExecutionStatus.ENDED, None)
    assert sweep_messages()["timeouts"] == 0


def test_a_reply_after_the_timeout_fired_starts_the_flow_again(bot, say):
    bot(ask_name())
    say("hola")
    Execution.objects.update(wait_deadline=timezone.now() - timedelta(seconds=1))
    sweep_messages()

    say("perdón, Ana")

    assert chat.bot_bodies() == [
        "¿Cómo te llamas?",
        "Se acabó el tiempo",
        "¿Cómo te llamas?",
    ]


def test_a_wait_never_outlives_the_executions_30_days(bot, say):
    bot(ask_name(seconds=str(90 * 24 * 3600)))

    say("hola")

    waiting = execution()
    assert waiting.wait_deadline <= waiting.started_at + timedelta(days=30)


# Handing over to agents.


def handoff(**kwargs: Any) -> dict[str, Any]:
    options = {
        "workflow": SUPPORT_WORKFLOW_SID,
        "channel": CHAT_CHANNEL_SID,
        "attributes": '{"name": "{{trigger.message.ProfileName}}", '
        '"said": "{{trigger.message.Body}}", "from": "{{contact.channel.address}}"}',
        "priority": "5",
        "timeout": "600",
        **kwargs,
    }
    return studio.flow(
        studio.trigger("to_agent"),
        studio.flex("to_agent", failed="sorry", **options),
        studio.send("sorry", "No hay asesores"),
    )


def test_send_to_flex_creates_a_task_and_queues_the_conversation(bot, say):
    bot(handoff())

    inbound = say("quiero un asesor")

    task = Task.objects.get()
    assert (task.workflow.name, task.channel.unique_name) == ("Support", "chat")
    assert task.attributes == {
        "name": "Lucía Gómez",
        "said": "quiero un asesor",
        "from": CUSTOMER,
    }
    assert (task.priority, task.timeout) == (5, 600)
    conversation = Conversation.objects.get(pk=inbound.conversation_id)
    assert (conversation.phase, conversation.task) == (Phase.QUEUED, task)
    ended = execution()
    assert ended.status == ExecutionStatus.ENDED
    assert chat.bot_bodies() == []


def test_a_message_while_queued_does_not_start_the_bot(bot, say):
    bot(handoff())
    say("quiero un asesor")

    later = say("¿hola?")

    assert later.conversation.phase == Phase.QUEUED
    assert Execution.objects.count() == 1
    assert Task.objects.count() == 1


def test_a_task_that_cannot_be_created_takes_failed_to_enqueue(bot, say):
    bot(handoff(timeout="0"))

    inbound = say("quiero un asesor")

    assert Task.objects.count() == 0
    assert chat.bot_bodies() == ["No hay asesores"]
    assert Conversation.objects.get(pk=inbound.conversation_id).phase == Phase.BOT


# The step log.


def test_each_step_records_widget_event_next_and_what_changed(bot, say):
    bot(
        studio.flow(
            studio.trigger("remember"),
            studio.set_variables(
                "remember",
                {"key": "documento", "value": "{{trigger.message.Body | strip}}"},
                {"key": "intento", "value": "1"},
                next="confirm",
            ),
            studio.send("confirm", "Anotado: {{flow.variables.documento}}"),
        )
    )

    say(" 1032 ")

    steps = list(ExecutionStep.objects.filter(execution=execution()))
    assert [(s.widget, s.widget_type, s.event, s.next) for s in steps] == [
        ("Trigger", "trigger", "incomingMessage", "remember"),
        ("remember", "set-variables", "next", "confirm"),
        ("confirm", "send-message", "sent", ""),
    ]
    assert steps[1].changes["flow.variables.documento"] == "1032"
    assert steps[1].changes["flow.variables.intento"] == "1"
    assert steps[2].changes["widgets.confirm"]["outbound"]["Body"] == "Anotado: 1032"
    assert steps[-1].detail == "ended: flow end"
    assert {s.flow_name for s in steps} == {"bot"}


# Limits: each ends the execution with a reason, and nothing escapes.


def counting_loop() -> dict[str, Any]:
    return studio.flow(
        studio.trigger("count"),
        studio.set_variables(
            "count",
            {"key": "n", "value": "{{flow.variables.n | plus: 1}}"},
            next="check",
        ),
        studio.split(
            "check",
            "{{flow.variables.n}}",
            ("greater_than", "100000", "done"),
            no_match="count",
        ),
        studio.send("done", "never"),
    )


def spinning() -> dict[str, Any]:
    return studio.flow(
        studio.trigger("spin"),
        studio.set_variables(
            "spin", {"key": "n", "value": "{{flow.variables.n | plus: 1}}"}, next="spin"
        ),
    )


LOOP_BOMB = echo(
    "{% for i in (1..1000) %}{% for j in (1..1000) %}x{% endfor %}{% endfor %}"
)


@pytest.mark.parametrize(
    ("definition", "reason"),
    [
        (counting_loop(), "1000"),
        (spinning(), "10 times in a row"),
        (LOOP_BOMB, "Liquid limit"),
    ],
    ids=["1000 steps", "same widget 10 times", "Liquid loop bomb"],
)
def test_a_runaway_flow_is_ended_with_its_limit_as_reason(bot, say, definition, reason):
    bot(definition)

    say("hola")

    ended = execution()
    assert ended.status == ExecutionStatus.ENDED
    assert reason in ended.end_reason
    assert chat.bot_bodies() == []


def test_the_step_limit_counts_a_thousand_widget_runs(bot, say):
    bot(counting_loop())

    say("hola")

    widget_runs = execution().steps.exclude(widget="Trigger").count()
    assert engine.MAX_STEPS - 1 <= widget_runs <= engine.MAX_STEPS


@pytest.mark.parametrize(
    ("runs", "reply", "reason"),
    [(9, ["ran 9 times"], "flow end"), (10, [], "10 times in a row")],
)
def test_the_same_widget_may_run_nine_times_in_a_row_but_not_ten(
    bot, say, runs, reply, reason
):
    counter["runs"] = 0
    bot(
        studio.flow(
            studio.trigger("again"),
            studio.function(
                "again",
                "https://legacy-1234.twil.io/test-count",
                success="again",
                fail="done",
                upto=str(runs),
            ),
            studio.send("done", "ran 9 times"),
        )
    )

    say("hola")

    assert chat.bot_bodies() == reply
    assert reason in execution().end_reason


# Widgets.


def test_set_variables_parses_json_objects(bot, say):
    bot(
        studio.flow(
            studio.trigger("keep"),
            studio.set_variables(
                "keep",
                {
                    "key": "profile",
                    "value": '{"name": "{{trigger.message.ProfileName}}", "visits": 3}',
                    "type": "json_object",
                },
                {"key": "text", "value": '{"a": 1}'},
                next="show",
            ),
            studio.send(
                "show",
                "{{flow.variables.profile.name}} "
                "{{flow.variables.profile.visits | plus: 1}} "
                "{{widgets.keep.profile.visits}} [{{flow.variables.text.a}}]",
            ),
        )
    )

    say("hola")

    assert chat.bot_bodies() == ["Lucía Gómez 4 3 []"]
    variables = execution().state["frames"][0]["context"]["flow"]["variables"]
    assert variables == {
        "profile": {"name": "Lucía Gómez", "visits": 3},
        "text": '{"a": 1}',
    }


class Answers(BaseHTTPRequestHandler):
    hits: list[str] = []

    def log_message(self, format, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.hits.append(self.path)
        if self.path.startswith("/customers/ana"):
            status, body = 200, json.dumps({"name": "Ana", "plan": "oro"}).encode()
        else:
            status, body = 500, b'{"error": "boom"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def hits() -> Iterator[list[str]]:
    Answers.hits.clear()
    yield Answers.hits
    Answers.hits.clear()


def lookup(server: str) -> dict[str, Any]:
    return studio.flow(
        studio.trigger("lookup"),
        studio.http(
            "lookup",
            server + "/customers/{{trigger.message.Body | downcase}}",
            success="found",
            failed="failed",
        ),
        studio.send(
            "found",
            "{{widgets.lookup.status_code}} {{widgets.lookup.content_type}} "
            "{{widgets.lookup.parsed.name}} {{widgets.lookup.parsed.plan}}",
        ),
        studio.send(
            "failed",
            "failed [{{widgets.lookup.body}}{{widgets.lookup.parsed}}]",
        ),
    )


@pytest.mark.parametrize(
    ("said", "reply", "path"),
    [
        ("Ana", "200 application/json Ana oro", "/customers/ana"),
        ("Boom", "failed []", "/customers/boom"),
    ],
    ids=["2xx JSON", "500"],
)
def test_make_http_request_to_an_allowed_server(
    bot, say, server, hits, settings, said, reply, path
):
    settings.SWITCHBOARD_HTTP_ALLOWLIST = ["127.0.0.1/32"]
    bot(lookup(server))

    say(said)

    assert chat.bot_bodies() == [reply]
    assert hits == [path]


def test_make_http_request_to_loopback_is_refused_without_the_allowlist(
    bot, say, server, hits
):
    bot(lookup(server))

    say("Ana")

    assert chat.bot_bodies() == ["failed []"]
    assert hits == []


def function_flow(name: str) -> dict[str, Any]:
    return studio.flow(
        studio.trigger("fn"),
        studio.function(
            "fn",
            f"https://legacy-1234.twil.io/{name}",
            success="ok",
            fail="ko",
            name="{{trigger.message.ProfileName}}",
        ),
        studio.send(
            "ok",
            "{{widgets.fn.parsed.greeting}} {{widgets.fn.parsed.visits | plus: 1}} "
            "[{{widgets.fn.body}}]",
        ),
        studio.send("ko", "falló [{{widgets.fn.body}}{{widgets.fn.parsed}}]"),
    )


@pytest.mark.parametrize(
    ("name", "reply"),
    [
        (
            "test-greet",
            'hola Lucía Gómez 4 [{"greeting": "hola Lucía Gómez", "visits": 3}]',
        ),
        ("test-plain", " 1 [just text]"),
        ("test-raise", "falló []"),
    ],
    ids=["returns a dict", "returns text", "raises"],
)
def test_run_function_calls_the_registered_function(bot, say, name, reply):
    bot(function_flow(name))

    say("hola")

    assert chat.bot_bodies() == [reply]


def test_a_function_that_runs_over_its_time_limit_fails():
    released.clear()
    try:
        result = call_function("test-hang", {}, timeout=0.2)
    finally:
        released.set()

    assert result.ok is False
    assert "0.2" in result.error


def test_call_function_never_raises():
    assert call_function("test-raise", {}).ok is False
    assert call_function("not-registered-anywhere", {}).ok is False
    assert call_function("test-greet", {"name": "Ana"}).parsed == {
        "greeting": "hola Ana",
        "visits": 3,
    }


def test_a_subflow_waits_for_the_reply_and_returns_its_variables(bot, say):
    child = studio.flow(
        studio.trigger(parent="ask"),
        studio.ask("ask", "{{trigger.parent.parameters.question}}", reply="keep"),
        studio.set_variables(
            "keep", {"key": "doc", "value": "{{widgets.ask.inbound.Body}}"}
        ),
    )
    import_flow(definition=child, name="ask-document")
    bot(
        studio.flow(
            studio.trigger("sub"),
            studio.subflow(
                "sub",
                "FW00000000000000000000000000000042",
                completed="done",
                failed="broken",
                question="¿Documento, {{trigger.message.ProfileName}}?",
            ),
            studio.send("done", "doc={{widgets.sub.doc}} [{{flow.variables.doc}}]"),
            studio.send("broken", "subflow failed"),
        ),
        mapping={"FW00000000000000000000000000000042": "ask-document"},
    )

    say("hola")
    say("1032")

    assert chat.bot_bodies() == ["¿Documento, Lucía Gómez?", "doc=1032 []"]
    assert execution().status == ExecutionStatus.ENDED


def test_a_subflow_that_cannot_run_takes_failed(bot, say):
    import_flow(definition=echo("hijo"), name="draft-child", publish=False)
    bot(
        studio.flow(
            studio.trigger("sub"),
            studio.subflow("sub", "draft-child", completed="done", failed="broken"),
            studio.send("done", "done"),
            studio.send("broken", "subflow failed"),
        )
    )

    say("hola")

    assert chat.bot_bodies() == ["subflow failed"]


# Triggers and customer text.


def test_incoming_conversation_message_is_used_when_only_it_is_wired(bot, say):
    bot(
        studio.flow(
            studio.trigger(conversation="answer"),
            studio.send(
                "answer",
                "conversation: {{trigger.conversation.Body}} / "
                "message: {{trigger.message.Body}}",
            ),
        )
    )

    say("hola")

    assert chat.bot_bodies() == ["conversation: hola / message: hola"]
    first = ExecutionStep.objects.filter(execution=execution()).first()
    assert first.event == "incomingConversationMessage"


def test_an_unwired_trigger_ends_without_a_word(bot, say):
    bot(studio.flow(studio.trigger(call="answer"), studio.send("answer", "x")))

    say("hola")

    assert chat.bot_bodies() == []
    assert execution().status == ExecutionStatus.ENDED


def test_a_voice_widget_off_the_messaging_path_does_not_stop_the_flow(bot, say):
    bot(
        studio.flow(
            studio.trigger("answer", call="say"),
            studio.send("answer", "Hola"),
            studio.voice("say"),
        )
    )

    say("hola")

    assert chat.bot_bodies() == ["Hola"]


@pytest.mark.parametrize(
    "text",
    [
        "{{flow.variables.secret}}",
        "{% for i in (1..100) %}x{% endfor %}",
        "{{ trigger | to_json }}",
        "{% if %}",
    ],
)
def test_customer_text_is_data_never_template_source(bot, say, text):
    bot(
        studio.flow(
            studio.trigger("hide"),
            studio.set_variables(
                "hide", {"key": "secret", "value": "s3cr3t"}, next="answer"
            ),
            studio.send("answer", "Dijiste: {{trigger.message.Body}}"),
        )
    )

    say(text)

    assert chat.bot_bodies() == [f"Dijiste: {text}"]
    assert execution().end_reason == "flow end"


def test_flow_ids_are_readable_from_liquid(bot, say):
    bot(echo("{{flow.sid}} {{flow.flow_sid}}"))

    say("hola")

    [reply] = chat.bot_bodies()
    execution_sid, flow_sid = reply.split()
    assert execution_sid == execution().sid
    assert flow_sid.startswith("FW") and len(flow_sid) == 34
