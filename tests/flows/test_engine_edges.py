"""Edges found in review: customer text that breaks hand-written JSON, outputs of a
widget that fails after succeeding, Liquid in condition arguments."""

from typing import Any

import pytest

from bots.flows.definition import InvalidFlow, validate
from bots.flows.functions import flow_function
from bots.flows.importing import local_refs
from bots.models import Execution
from routing.models import Task
from tests.flows import chat, studio
from tests.flows.test_engine import bot, handoff, say  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

calls = {"n": 0}


@flow_function("test-first-only")
def first_only(context, event: dict[str, Any]) -> dict[str, Any]:
    calls["n"] += 1
    if calls["n"] > 1:
        raise RuntimeError("second call fails")
    return {"n": calls["n"]}


def test_a_quote_in_what_the_customer_typed_still_makes_a_task(bot, say):  # noqa: F811
    bot(handoff())

    say('quiero "hablar" con alguien \\ ya')

    task = Task.objects.get()
    assert task.attributes["said"] == 'quiero "hablar" con alguien \\ ya'
    assert Execution.objects.get().end_reason == "handed to an agent"


def test_attributes_that_are_not_json_at_all_take_failed_to_enqueue(bot, say):  # noqa: F811
    bot(handoff(attributes="{not json"))

    say("hola")

    assert Task.objects.count() == 0
    assert chat.bot_bodies() == ["No hay asesores"]


def test_a_widget_that_fails_after_succeeding_leaves_its_outputs_empty(bot, say):  # noqa: F811
    calls["n"] = 0
    bot(
        studio.flow(
            studio.trigger("ask"),
            studio.ask("ask", "¿Otra vez?", reply="call"),
            studio.function(
                "call",
                "https://x-1234.twil.io/test-first-only",
                success="show",
                fail="show",
            ),
            studio.send("show", "n={{widgets.call.parsed.n}}", sent="ask"),
        )
    )

    say("hola")
    say("otra")
    say("y otra")

    assert chat.bot_bodies() == ["¿Otra vez?", "n=1", "¿Otra vez?", "n=", "¿Otra vez?"]


def test_liquid_in_a_condition_argument_is_checked_at_import():
    definition = studio.flow(
        studio.trigger("choose"),
        studio.split("choose", "{{trigger.message.Body}}", ("equal_to", "1", None)),
    )
    condition = definition["states"][1]["transitions"][1]["conditions"][0]
    condition["arguments"] = ["{{ x | }}"]

    with pytest.raises(InvalidFlow) as raised:
        validate(definition, local_refs({}))

    assert any("argument does not parse" in p for p in raised.value.problems)


def test_time_conditions_compare_in_the_flows_time_zone(bot, say, settings):  # noqa: F811
    # 23:30 in Bogotá is 04:30 the next day in UTC.
    settings.SWITCHBOARD_FLOW_TIME_ZONE = "America/Bogota"
    bot(
        studio.flow(
            studio.trigger("when"),
            studio.split(
                "when",
                "{{trigger.message.Body}}",
                ("is_after_time", "22:00", "late"),
                no_match="early",
            ),
            studio.send("late", "tarde"),
            studio.send("early", "temprano"),
        )
    )

    say("2026-11-27T04:30:00+00:00")

    assert chat.bot_bodies() == ["tarde"]
