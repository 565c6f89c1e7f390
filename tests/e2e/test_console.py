"""The agents' console on the real stack: two agents in their own browsers, a
customer on the simulator's phone, everything live over WebSockets.

Each test has its own customer; the agents it signs in leave with no offer, no
conversation and the status Offline, so no test depends on another. The demo
workflow offers a task without a language to the Spanish queue first (only ana
speaks Spanish), so the first offer always goes to ana.
"""

import contextlib
import re
import sys
import uuid
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    WebSocketRoute,
    expect,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.e2e.conftest import TIMEOUT_MS, Stack

pytestmark = pytest.mark.e2e

PASSWORD = "demo"
MENU = "Escribe 1 para cancelar una cita o 2 para hablar con un asesor."
READ = re.compile(r"\bstatus-read\b")
ON = re.compile(r"\bon\b")
OFF = re.compile(r"\boff\b")
QUICK_MS = 2_000
ATTEMPTS = 5

# Stamps, with the wall clock every page of the browser shares, the moment a text
# first shows in the open conversation's transcript (the panel is replaced whole
# by live updates, so the whole document is watched).
WATCH_TRANSCRIPT = """text => {
  window.e2eSeen = window.e2eSeen || {};
  const look = () => {
    const list = document.querySelector("#conversation #transcript");
    if (list && list.textContent.includes(text)) {
      window.e2eSeen[text] = window.e2eSeen[text] || Date.now();
      return true;
    }
    return false;
  };
  if (look()) return;
  const observer = new MutationObserver(() => { if (look()) observer.disconnect(); });
  observer.observe(document, {childList: true, subtree: true, characterData: true});
}"""
STAMP_CLICK = (
    "button => button.addEventListener("
    "'click', () => { window.e2eClickedAt = Date.now(); }, {once: true})"
)


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def say(phone: Page, text: str) -> None:
    box = phone.get_by_label("Message", exact=True)
    box.fill(text)
    phone.get_by_role("button", name="Send", exact=True).click()
    said = phone.locator("#transcript li.inbound").get_by_text(text, exact=True)
    expect(said.last).to_be_visible()
    # The live transcript can show the message before the POST is answered, and
    # the answer empties the box: typing the next one before would lose it.
    expect(box).to_have_value("")


def menus(phone: Page) -> Locator:
    return phone.locator("#transcript li.outbound", has_text=MENU)


# The console, as an agent sees it


def connection(console: Page) -> Locator:
    return console.get_by_role("status")


def status(console: Page) -> Locator:
    return console.get_by_label("Status", exact=True)


def offers(console: Page) -> Locator:
    return console.get_by_role("region", name="Offers").get_by_role("article")


def listed(console: Page) -> Locator:
    return console.get_by_role("navigation", name="Conversations").get_by_role("link")


def transcript(console: Page) -> Locator:
    return console.get_by_role("list", name="Transcript")


def in_transcript(console: Page, text: str) -> Locator:
    return transcript(console).get_by_role("listitem").filter(has_text=text)


def set_status(console: Page, activity: str) -> None:
    status(console).select_option(activity)
    # The select is green once the server has made the worker available.
    expect(status(console)).to_have_class(ON if activity == "Available" else OFF)
    expect(status(console)).to_have_value(activity)


def tool(console: Page, name: str) -> Locator:
    """The <details> `name` (Transfer, Complete) under the open conversation."""
    return console.locator("#conversation details").filter(
        has=console.locator("summary", has_text=name)
    )


def use_tool(
    console: Page,
    name: str,
    *,
    choose: tuple[str, str],
    write: tuple[str, str],
    press: bool = True,
) -> Locator:
    """Open the conversation's `name` details, choose an option by its label,
    write a note, and press the button `name` (unless `press` is false).

    Every live update re-renders the conversation panel, which closes the details
    and drops what was typed (the last test shows it): when one lands half-way,
    start again, so the scenarios test what they are about.
    """
    details = tool(console, name)

    def attempt() -> Locator:
        if details.get_attribute("open") is None:
            details.locator("summary").click()
        details.get_by_label(choose[0], exact=True).select_option(label=choose[1])
        details.get_by_label(write[0], exact=True).fill(write[1])
        if press:
            details.get_by_role("button", name=name, exact=True).click()
        return details

    console.set_default_timeout(QUICK_MS)
    try:
        for _ in range(ATTEMPTS - 1):
            with contextlib.suppress(PlaywrightTimeoutError):
                return attempt()
        return attempt()
    finally:
        console.set_default_timeout(TIMEOUT_MS)


def send_reply(console: Page, text: str) -> None:
    console.get_by_label("Message", exact=True).fill(text)
    console.get_by_role("button", name="Send", exact=True).click()


def leave(console: Page) -> None:
    """Go Offline, so nothing more is offered; reject what is, complete what is held."""
    expect(connection(console)).to_have_text("Live")
    set_status(console, "Offline")
    while count := offers(console).count():
        offers(console).first.get_by_role("button", name="Reject").click()
        expect(offers(console)).to_have_count(count - 1)
    while count := listed(console).count():
        with console.expect_response(re.compile(r"/console/conversations/\d+$")):
            listed(console).first.click()
        use_tool(
            console,
            "Complete",
            choose=("Wrap-up code", "(none)"),
            write=("Notes", "Closed by the test's teardown"),
        )
        expect(listed(console)).to_have_count(count - 1)


class Cable:
    """The console's WebSocket, run through Playwright so a test can pull it out.

    `context.set_offline(True)` is no use here: Chromium keeps an open WebSocket
    open while offline and hands it the buffered frames when back online
    (microsoft/playwright#4910), so nothing would ever be missed.
    """

    def __init__(self) -> None:
        self.plugged = True
        self.connections: list[tuple[WebSocketRoute, WebSocketRoute]] = []

    def attach(self, context: BrowserContext) -> None:
        context.route_web_socket(re.compile(r"/ws/console/"), self.route)

    def route(self, page_side: WebSocketRoute) -> None:
        if not self.plugged:
            page_side.close(code=1011, reason="unplugged")
            return
        self.connections.append((page_side, page_side.connect_to_server()))

    def unplug(self) -> None:
        self.plugged = False
        for page_side, server_side in self.connections:
            server_side.close()
            page_side.close(code=1011, reason="unplugged")
        self.connections.clear()

    def plug(self) -> None:
        self.plugged = True


@pytest.fixture
def sign_in(
    browser: Browser, stack: Stack, customer: str
) -> Iterator[Callable[..., Page]]:
    """`sign_in("ana")`: ana's console in a browser context of her own, live.

    Afterwards nothing of the test is left to the next: the customer's waiting
    tasks are canceled, as an operator would, and each agent leaves.
    """
    consoles: list[Page] = []
    cables: list[Cable] = []

    def open_console(username: str, *, cable: Cable | None = None) -> Page:
        context = browser.new_context(base_url=stack.url)
        if cable is not None:
            cables.append(cable)
            cable.attach(context)
        console = context.new_page()
        console.set_default_timeout(TIMEOUT_MS)
        consoles.append(console)
        console.goto("/accounts/login/")
        console.get_by_label("Username").fill(username)
        console.get_by_label("Password").fill(PASSWORD)
        console.get_by_role("button", name="Log in").click()
        expect(console).to_have_url(f"{stack.url}/console/")
        expect(connection(console)).to_have_text("Live")
        return console

    yield open_console
    for cable in cables:
        cable.plug()
    stack.query(
        f"""
from routing.models import LIVE_TASK, Task
from routing.services import cancel_task
for task in Task.objects.filter(attributes__from={customer!r}, status__in=LIVE_TASK):
    cancel_task(task_id=task.pk)
"""
    )
    failures = []
    for console in consoles:
        try:
            leave(console)
        except Exception as exc:  # leave the others all the same
            failures.append(exc)
        finally:
            console.context.close()
    if failures:
        raise failures[0]


def report(
    capsys: pytest.CaptureFixture[str],
    record_property: Callable[[str, object], None],
    seconds: float,
) -> None:
    """Show the measure on the terminal even under capture, and in the report."""
    record_property("customer_to_agent_seconds", round(seconds, 3))
    with capsys.disabled():
        sys.stderr.write(f"\ncustomer message reached the agent in {seconds:.2f} s\n")


def take_from_the_bot(phone: Page, agent: Page) -> None:
    """The customer asks the bot for an agent; `agent` accepts the offer."""
    say(phone, "hola")
    expect(menus(phone)).to_have_count(1)
    ask = unique("Quiero hablar con un asesor")
    say(phone, ask)
    offers(agent).filter(has_text=ask).get_by_role("button", name="Accept").click()


def test_an_agent_takes_a_customer_from_the_bot_transfers_and_completes(
    stack: Stack,
    phone: Page,
    customer: str,
    sign_in: Callable[..., Page],
    capsys: pytest.CaptureFixture[str],
    record_property: Callable[[str, object], None],
) -> None:
    ana = sign_in("ana")
    set_status(ana, "Available")
    ana.evaluate("window.e2eSamePage = true")

    # The customer talks to the bot and asks for an agent.
    say(phone, "hola")
    expect(menus(phone)).to_have_count(1)
    say(phone, "2")

    # The offer reaches ana live: who, where from, which queue, the last words.
    offer = offers(ana).filter(has_text="“2”")
    expect(offer).to_have_count(1)
    expect(offer).to_contain_text("Lucia")
    expect(offer).to_contain_text("WhatsApp")
    expect(offer).to_contain_text("Spanish")
    offer.get_by_role("button", name="Accept").click()

    # She sees the whole transcript and who the customer is.
    expect(offer).to_have_count(0)
    expect(listed(ana).filter(has_text="Lucia")).to_have_count(1)
    expect(transcript(ana).get_by_role("listitem")).to_have_text(
        [re.compile(r"\bhola\b"), re.compile(re.escape(MENU)), re.compile(r"\b2\b")]
    )
    context = ana.get_by_role("complementary", name="Customer")
    expect(context).to_contain_text(customer)
    expect(context).to_contain_text("Lucia")
    expect(context).to_contain_text("asked_for_agent")

    # Her reply reaches the phone, and its ticks come back to her as read.
    reply = unique("Hola Lucia, soy Ana. ¿En qué te ayudo?")
    send_reply(ana, reply)
    expect(ana.get_by_label("Message", exact=True)).to_have_value("")
    answer = phone.locator("#transcript li.outbound", has_text=reply)
    expect(answer).to_be_visible()
    expect(answer.locator(".ticks")).to_have_class(READ)
    expect(in_transcript(ana, reply).locator(".ticks")).to_have_class(READ)

    # The customer writes again: it shows on ana's screen live. How fast?
    again = unique("Quiero cambiar mi cita del martes")
    ana.evaluate(WATCH_TRANSCRIPT, again)
    phone.get_by_role("button", name="Send", exact=True).evaluate(STAMP_CLICK)
    say(phone, again)
    expect(in_transcript(ana, again)).to_be_visible()
    seen_at = ana.evaluate(f"window.e2eSeen[{again!r}]")
    clicked_at = phone.evaluate("window.e2eClickedAt")
    report(capsys, record_property, (seen_at - clicked_at) / 1000)

    # ana transfers to ben with a note; ben sees the offer with it and accepts.
    ben = sign_in("ben")
    set_status(ben, "Available")
    note = unique("Wants to move Tuesday's appointment")
    use_tool(
        ana,
        "Transfer",
        choose=("To", "ben"),
        write=("Note for the next agent", note),
    )

    offer = offers(ben).filter(has_text=note)
    expect(offer).to_have_count(1)
    expect(offer).to_contain_text("Lucia")
    offer.get_by_role("button", name="Accept").click()
    expect(in_transcript(ben, again)).to_be_visible()
    expect(in_transcript(ben, reply)).to_be_visible()
    expect(in_transcript(ben, MENU)).to_be_visible()

    # The conversation has left ana's console.
    expect(listed(ana).filter(has_text="Lucia")).to_have_count(0)
    expect(ana.get_by_label("Message", exact=True)).to_have_count(0)
    assert ana.evaluate("window.e2eSamePage") is True, "ana's console was reloaded"

    # ben wraps up; the customer's next message goes to the bot again.
    use_tool(
        ben,
        "Complete",
        choose=("Wrap-up code", "Resolved"),
        write=("Notes", "Moved to Thursday"),
    )
    expect(listed(ben).filter(has_text="Lucia")).to_have_count(0)
    say(phone, unique("hola de nuevo"))
    expect(menus(phone)).to_have_count(2)


def test_messages_that_arrive_while_the_console_socket_is_down_show_after_it_reconnects(
    stack: Stack, phone: Page, customer: str, sign_in: Callable[..., Page]
) -> None:
    cable = Cable()
    ana = sign_in("ana", cable=cable)
    set_status(ana, "Available")
    take_from_the_bot(phone, ana)
    expect(in_transcript(ana, MENU)).to_be_visible()
    ana.evaluate("window.e2eSamePage = true")

    cable.unplug()
    expect(connection(ana)).to_have_text("Reconnecting…")
    first, second = unique("¿Siguen ahí?"), unique("Necesito ayuda con mi cita")
    say(phone, first)
    say(phone, second)
    stack.wait_for(
        f"""
from bots.models import Message
result = Message.objects.filter(
    from_address={customer!r}, body__in=[{first!r}, {second!r}],
    processed_at__isnull=False,
).count() == 2
""",
        "both messages processed while the console is cut off",
    )
    expect(in_transcript(ana, first)).to_have_count(0)
    expect(in_transcript(ana, second)).to_have_count(0)

    cable.plug()

    expect(connection(ana)).to_have_text("Live")
    expect(in_transcript(ana, first)).to_be_visible()
    expect(in_transcript(ana, second)).to_be_visible()
    assert ana.evaluate("window.e2eSamePage") is True, "the console was reloaded"


def test_a_live_update_leaves_the_transfer_form_open_with_its_note(
    stack: Stack, phone: Page, customer: str, sign_in: Callable[..., Page]
) -> None:
    ana = sign_in("ana")
    set_status(ana, "Available")
    take_from_the_bot(phone, ana)
    expect(in_transcript(ana, MENU)).to_be_visible()
    note = unique("She prefers mornings")
    transfer = use_tool(
        ana,
        "Transfer",
        choose=("To", "ben"),
        write=("Note for the next agent", note),
        press=False,
    )

    more = unique("Perdón, una cosa más")
    say(phone, more)

    expect(in_transcript(ana, more)).to_be_visible()
    expect(transfer).to_have_attribute("open", "")
    expect(transfer.get_by_label("Note for the next agent")).to_have_value(note)
