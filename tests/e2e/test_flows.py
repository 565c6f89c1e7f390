"""The seed's tutorial flow on the real stack: the customer talks to the bot in the
simulator, every message going through the signed webhook, the worker running the
flow, and the replies coming back live."""

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

CASES = json.loads(
    (Path(__file__).parents[1] / "fixtures/flows/appointments.cases.json").read_text()
)["cases"]


def say(phone: Page, text: str) -> None:
    phone.get_by_label("Message", exact=True).fill(text)
    phone.get_by_role("button", name="Send", exact=True).click()


def bot_bubbles(phone: Page):
    return phone.locator("#transcript li.outbound")


@pytest.mark.parametrize(
    "case",
    [case for case in CASES if "@timeout" not in case["say"]],
    ids=lambda case: case["name"],
)
def test_the_example_case_plays_out_in_the_simulator(
    phone: Page, stack: Stack, customer: str, case: dict
):
    expected = [step for step in case["expect"] if step["type"] == "message"]
    for text in case["say"]:
        shown = bot_bubbles(phone).count()
        say(phone, text)
        # Each customer message gets its answer before the next is typed.
        expect(phone.locator("#transcript li.inbound").last).to_contain_text(text)
        if len(expected) > shown:
            expect(bot_bubbles(phone)).to_have_count(shown + 1)

    bubbles = bot_bubbles(phone)
    expect(bubbles).to_have_count(len(expected))
    for index, step in enumerate(expected):
        expect(bubbles.nth(index)).to_contain_text(step["body_contains"])

    handoff = next((s for s in case["expect"] if s["type"] == "handoff"), None)
    state = stack.wait_for(
        f"""
from bots.models import Conversation
c = Conversation.objects.filter(contact__address={customer!r}).first()
e = c.executions.first() if c else None
if e is not None and e.status == "ended":
    result = {{"phase": c.phase, "reason": e.end_reason,
              "task": c.task.attributes if c.task_id else None}}
""",
        "the execution's end",
    )
    if handoff:
        assert state["phase"] == "queued"
        assert state["reason"] == "handed to an agent"
        for key, value in handoff["attributes"].items():
            if key != "from":
                assert state["task"][key] == value
        assert state["task"]["from"] == customer
    else:
        assert state["phase"] == "bot"
        assert state["reason"] == "flow end"
