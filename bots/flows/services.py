"""Executions: start a flow for a contact, resume it on a reply or a timeout, store
every step. The engine does the interpreting; this module gives it the world."""

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from bots import messaging
from bots.flows import functions
from bots.flows import http as flow_http
from bots.flows.engine import Engine, HandoffFailed, SendFailed, new_state
from bots.models import (
    Author,
    Conversation,
    Execution,
    ExecutionStatus,
    ExecutionStep,
    Flow,
    FlowRevision,
    Message,
    Phase,
    Sender,
    Template,
)
from bots.services.conversations import get_or_create_contact, get_or_open_conversation
from routing import services as routing

logger = logging.getLogger(__name__)

MAX_EXECUTION_AGE = timedelta(days=30)
LIVE = (ExecutionStatus.ACTIVE, ExecutionStatus.WAITING)

Listener = Callable[[dict[str, Any]], None]
HttpOverride = Callable[..., flow_http.HttpResult]
# runflow listens to every line the engine emits, and may answer HTTP requests
# from stubs; the server sets neither.
_listener: contextvars.ContextVar[Listener | None] = contextvars.ContextVar(
    "flow_listener", default=None
)
_http_override: contextvars.ContextVar[HttpOverride | None] = contextvars.ContextVar(
    "flow_http_override", default=None
)


@contextlib.contextmanager
def listening(listener: Listener, http: HttpOverride | None = None) -> Iterator[None]:
    token = _listener.set(listener)
    http_token = _http_override.set(http)
    try:
        yield
    finally:
        _listener.reset(token)
        _http_override.reset(http_token)


class DbRuntime:
    """What the engine does to the world, through the same services as the rest."""

    def __init__(self, execution: Execution) -> None:
        self.execution = execution
        self.steps: list[ExecutionStep] = []
        self._revisions: dict[int, FlowRevision] = {}

    def emit(self, line: dict[str, Any]) -> None:
        if listener := _listener.get():
            listener(line)
        if line["type"] == "step":
            self.steps.append(
                ExecutionStep(
                    execution=self.execution,
                    flow_name=line["flow"],
                    widget=line["widget"],
                    widget_type=line["widget_type"],
                    event=line["event"],
                    next=line["next"],
                    changes=line["changes"],
                )
            )
        elif line["type"] == "end" and self.steps:
            self.steps[-1].detail = f"ended: {line['reason']}"

    def send_message(self, *, widget: str, **message: Any) -> dict[str, Any]:
        template = None
        if message["content_sid"]:
            template = Template.objects.filter(
                content_sid=message["content_sid"]
            ).first()
            if template is None:
                raise SendFailed(
                    f"no template with content SID {message['content_sid']}"
                )
        try:
            sent = messaging.send(
                sender=message["from_"],
                to=message["to"],
                body=message["body"],
                media_urls=message["media_urls"],
                template=template,
                variables=message["content_variables"],
                author=Author.BOT,
            )
        except messaging.MessagingError as exc:
            raise SendFailed(str(exc)) from exc
        self.emit(
            {
                "type": "message",
                "to": sent.to_address,
                "body": sent.body,
                "widget": widget,
            }
        )
        return {
            "Body": sent.body,
            "From": sent.from_address,
            "To": sent.to_address,
            "MessageSid": f"SM{sent.pk:032x}",
            "Status": sent.status,
        }

    def create_task(self, *, widget: str, **task: Any) -> dict[str, Any]:
        try:
            created = routing.create_task(**task)
        except routing.RoutingError as exc:
            raise HandoffFailed(str(exc)) from exc
        if self.execution.conversation_id:
            Conversation.objects.filter(pk=self.execution.conversation_id).update(
                phase=Phase.QUEUED, task=created
            )
        return {"sid": f"WT{created.pk:032x}"}

    def call_function(
        self, *, widget: str, name: str, event: dict[str, Any]
    ) -> functions.FunctionResult:
        if name not in functions.registered():
            self.emit(
                {
                    "type": "warning",
                    "widget": widget,
                    "message": f"function {name!r} is not registered: "
                    f"{widget} takes fail",
                }
            )
        return functions.call_function(name, event)

    def http_request(self, *, widget: str, **request: Any) -> flow_http.HttpResult:
        if override := _http_override.get():
            return override(**request)
        return flow_http.http_request(**request)

    def definition(self, revision: int) -> tuple[dict[str, Any], dict[str, str]]:
        found = self._revisions.get(revision)
        if found is None:
            found = self._revisions[revision] = FlowRevision.objects.get(pk=revision)
        return found.definition, found.mapping

    def load_flow(self, ref: str) -> tuple[int, str, dict[str, Any], dict[str, str]]:
        flow = Flow.objects.select_related("published").filter(name=ref).first()
        if flow is None or flow.published is None:
            raise LookupError(f"no published flow named {ref!r}")
        self._revisions[flow.published.pk] = flow.published
        return (
            flow.published.pk,
            flow.name,
            flow.published.definition,
            flow.published.mapping,
        )


def _run(execution: Execution, action: Callable[[Engine], None]) -> Execution:
    """Run the engine on a locked execution and store where it got to."""
    runtime = DbRuntime(execution)
    engine = Engine(execution.state, runtime)
    action(engine)
    now = timezone.now()
    execution.state = engine.state
    if engine.ended is not None:
        execution.status = ExecutionStatus.ENDED
        execution.end_reason = engine.ended[:300]
        execution.ended_at = now
        execution.waiting_widget, execution.wait_deadline = "", None
    elif engine.waiting:
        execution.status = ExecutionStatus.WAITING
        execution.waiting_widget = engine.waiting["widget"]
        deadline = now + timedelta(seconds=engine.waiting["timeout"])
        execution.wait_deadline = min(
            deadline, execution.started_at + MAX_EXECUTION_AGE
        )
    execution.save()
    ExecutionStep.objects.bulk_create(runtime.steps)
    return execution


def start_execution(
    *,
    flow: Flow,
    conversation: Conversation | None,
    contact_address: str,
    channel_address: str,
    trigger: dict[str, Any],
) -> Execution:
    """Start `flow`'s published revision and run it until it waits or ends.

    Call inside a transaction.
    """
    revision = flow.published
    if revision is None:
        raise LookupError(f"flow {flow.name!r} has no published revision")
    execution = Execution.objects.create(
        revision=revision,
        conversation=conversation,
        contact_address=contact_address,
        channel_address=channel_address,
        status=ExecutionStatus.ACTIVE,
    )
    execution.started_at = execution.started_at or timezone.now()
    execution.state = new_state(
        revision=revision.pk,
        flow=flow.name,
        flow_sid=f"FW{flow.pk:032x}",
        trigger=trigger,
        sid=execution.sid,
    )
    return _run(execution, lambda engine: engine.start())


def on_inbound(*, conversation: Conversation, message: Message) -> Execution | None:
    """A customer's message in the bot phase: resume the waiting flow, or start one.

    Call inside the transaction that holds the conversation's lock. Returns the
    execution that ran, or None when there is none to run (no flow bound to the
    sender, or the conversation is with people).
    """
    if conversation.phase != Phase.BOT:
        return None
    execution = (
        Execution.objects.select_for_update()
        .filter(conversation=conversation, status__in=LIVE)
        .first()
    )
    if execution is not None and execution.status == ExecutionStatus.WAITING:
        execution.last_input_id = message.pk
        return _run(execution, lambda engine: engine.reply(message.raw))
    if execution is not None:  # left running by a crash: it cannot be resumed
        stop_executions(ids=[execution.pk], reason="interrupted")
    flow = conversation.sender.flow
    if flow is None:
        return None
    return start_execution(
        flow=flow,
        conversation=conversation,
        contact_address=message.from_address,
        channel_address=message.to_address,
        trigger={"message": dict(message.raw)},
    )


class ExecutionConflict(Exception):
    """The contact already has a live execution, or is with people."""


def start_rest_execution(
    *, flow_name: str, to: str, from_: str, parameters: dict[str, Any]
) -> Execution:
    """Start a flow as Studio's REST trigger does: `to` is the contact, `from_` ours.

    Raises LookupError for an unknown flow or sender, ExecutionConflict when the
    contact already has a live execution or is talking to an agent.
    """
    flow = Flow.objects.select_related("published").filter(name=flow_name).first()
    if flow is None or flow.published is None:
        raise LookupError(f"no published flow named {flow_name!r}")
    sender = Sender.objects.filter(address=from_).first()
    if sender is None:
        raise LookupError(f"From {from_!r} is not one of our senders")
    with transaction.atomic():
        contact = get_or_create_contact(address=to)
        conversation = get_or_open_conversation(contact=contact, sender=sender)
        if conversation.phase != Phase.BOT:
            raise ExecutionConflict(f"{to} is in a conversation with an agent")
        if Execution.objects.filter(
            conversation=conversation, status__in=LIVE
        ).exists():
            raise ExecutionConflict(f"{to} already has a running execution")
        return start_execution(
            flow=flow,
            conversation=conversation,
            contact_address=to,
            channel_address=from_,
            trigger={"request": {"from": from_, "to": to, "parameters": parameters}},
        )


def stop_executions(*, ids: list[int], reason: str = "stopped in admin") -> int:
    """Stop live executions; the contact's next message starts the flow afresh."""
    return Execution.objects.filter(pk__in=ids, status__in=LIVE).update(
        status=ExecutionStatus.FAILED,
        end_reason=reason,
        ended_at=timezone.now(),
        waiting_widget="",
        wait_deadline=None,
    )


def fire_timeout(*, execution_id: int, force: bool = False) -> Execution | None:
    """Resume a waiting execution on `timeout` once its deadline has passed.

    A no-op (None) if it is no longer waiting, or not yet due unless `force`.
    """
    with transaction.atomic():
        query = Execution.objects.select_for_update().filter(
            pk=execution_id, status=ExecutionStatus.WAITING
        )
        if not force:
            query = query.filter(wait_deadline__lte=timezone.now())
        execution = query.first()
        if execution is None:
            return None
        if timezone.now() >= execution.started_at + MAX_EXECUTION_AGE:
            return _run(execution, lambda engine: engine.expire("30 days"))
        return _run(execution, lambda engine: engine.timeout())


def list_due_timeouts(*, limit: int = 500) -> list[int]:
    return list(
        Execution.objects.filter(
            status=ExecutionStatus.WAITING, wait_deadline__lte=timezone.now()
        )
        .order_by("wait_deadline")
        .values_list("pk", flat=True)[:limit]
    )
