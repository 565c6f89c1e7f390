"""The flow engine: runs a Studio definition's widgets until it must wait or it ends.

Pure: everything it does to the world goes through a `Runtime` (send a message,
create a task, call a function or a URL, load a subflow, record what happened), so
the server, `runflow` and the tests run the very same interpreter. Its whole state
is a JSON-able dict, stored between a wait and the reply that resumes it.
"""

import json
import logging
from collections.abc import Callable
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from django.conf import settings

from bots.flows import liquid, operators
from bots.flows.definition import FlowDefinition
from bots.flows.functions import FunctionResult, function_name
from bots.flows.http import HttpResult

logger = logging.getLogger(__name__)

MAX_STEPS = 1000
MAX_SAME_WIDGET = 10
DEFAULT_REPLY_TIMEOUT = 3600


class SendFailed(Exception):
    """The runtime could not send a message (the widget takes its failure event)."""


class HandoffFailed(Exception):
    """The runtime could not create the routing task."""


class Stop(Exception):
    """Ends the execution early with a reason: a limit, an error in a widget."""


class Runtime(Protocol):
    def send_message(self, *, widget: str, **message: Any) -> dict[str, Any]: ...
    def create_task(self, *, widget: str, **task: Any) -> dict[str, Any]: ...
    def call_function(
        self, *, widget: str, name: str, event: dict[str, Any]
    ) -> FunctionResult: ...
    def http_request(self, *, widget: str, **request: Any) -> HttpResult: ...
    def load_flow(
        self, ref: str
    ) -> tuple[int, str, dict[str, Any], dict[str, str]]: ...
    def definition(self, revision: int) -> tuple[dict[str, Any], dict[str, str]]: ...
    def emit(self, line: dict[str, Any]) -> None: ...


def new_state(
    *, revision: int, flow: str, flow_sid: str, trigger: dict[str, Any], sid: str
) -> dict[str, Any]:
    """The state of an execution about to start; `trigger` is the Liquid `trigger`."""
    message = trigger.get("message") or {}
    request = trigger.get("request") or {}
    channel = message.get("To") or request.get("from", "")
    contact = message.get("From") or request.get("to", "")
    context = {
        "trigger": trigger,
        "flow": {
            "data": request.get("parameters", {}),
            "variables": {},
            "channel": {"address": channel},
            "flow_sid": flow_sid,
            "sid": sid,
        },
        "contact": {"channel": {"address": contact}},
        "widgets": {},
    }
    frame = {"revision": revision, "flow": flow, "state": None, "context": context}
    return {"frames": [frame], "steps": 0, "streak": ["", 0], "waiting": None}


class Engine:
    """Runs one execution's state forward through a runtime."""

    def __init__(self, state: dict[str, Any], runtime: Runtime) -> None:
        self.state = state
        self.runtime = runtime
        self.ended: str | None = None

    # -- entry points -----------------------------------------------------------

    def start(self) -> None:
        """Take the trigger's event for how the execution began, then run."""
        frame = self.state["frames"][-1]
        definition = self._definition(frame)
        trigger = definition.states.get(definition.initial_state, {})
        frame["state"] = definition.initial_state
        self._advance(definition, trigger, self._trigger_event(definition, frame), {})
        self.run()

    def reply(self, fields: dict[str, Any]) -> None:
        """The contact answered the widget that waits: resume on `incomingMessage`."""
        self._resume("incomingMessage", {"inbound": dict(fields)})

    def timeout(self) -> None:
        """Nobody answered in time: resume on `timeout`."""
        self._resume("timeout", {})

    def expire(self, age: str) -> None:
        """The execution outlived Studio's limit: end it without resuming."""
        self._end(f"expired after {age}")

    @property
    def waiting(self) -> dict[str, Any] | None:
        return self.state.get("waiting")

    # -- the loop ---------------------------------------------------------------

    def run(self) -> None:
        try:
            while not self.ended and not self.waiting:
                frame = self.state["frames"][-1]
                if frame["state"] is None:
                    self._finish_frame()
                    continue
                definition = self._definition(frame)
                widget = definition.states[frame["state"]]
                self._count(widget["name"])
                event, outputs, *chosen = self._run_widget(widget, frame["context"])
                if event is not None:
                    self._advance(
                        definition, widget, event, outputs, *chosen, replace=True
                    )
        except Stop as stop:
            self._end(str(stop))
        except liquid.RenderLimitExceeded as exc:
            self._end(f"Liquid limit: {exc}")

    def _run_widget(self, widget: dict[str, Any], context: dict[str, Any]) -> "Result":
        handler = _HANDLERS.get(widget["type"])
        if handler is None:
            raise Stop(f'widget "{widget["name"]}" of type {widget["type"]} cannot run')
        try:
            return handler(self, widget, widget.get("properties") or {}, context)
        except (Stop, liquid.RenderLimitExceeded):
            raise
        except Exception as exc:
            logger.exception("flow widget %s failed", widget["name"])
            raise Stop(f'error in widget "{widget["name"]}": {exc}') from exc

    def _advance(
        self,
        definition: FlowDefinition,
        widget: dict[str, Any],
        event: str,
        outputs: dict[str, Any],
        *chosen: str | None,
        replace: bool = False,
    ) -> None:
        """Record the widget's outputs and step on along `event` (or `chosen`).

        A widget that ran replaces its outputs, so a failure leaves them empty;
        a reply adds `inbound` beside the `outbound` its widget kept.
        """
        frame = self.state["frames"][-1]
        widgets = frame["context"]["widgets"]
        if replace:
            widgets[widget["name"]] = dict(outputs)
        elif outputs:
            widgets.setdefault(widget["name"], {}).update(outputs)
        next_state = chosen[0] if chosen else definition.next_state(widget, event)
        frame["state"] = next_state
        self.runtime.emit(
            {
                "type": "step",
                "flow": frame["flow"],
                "widget": widget["name"],
                "widget_type": widget.get("type", ""),
                "event": event,
                "next": next_state or "",
                "changes": _changes(widget, outputs),
            }
        )

    def _count(self, name: str) -> None:
        self.state["steps"] += 1
        if self.state["steps"] > MAX_STEPS:
            raise Stop(f"stopped after {MAX_STEPS} steps")
        last, count = self.state["streak"]
        count = count + 1 if last == name else 1
        self.state["streak"] = [name, count]
        if count >= MAX_SAME_WIDGET:
            raise Stop(f'widget "{name}" ran {MAX_SAME_WIDGET} times in a row')

    def _finish_frame(self) -> None:
        frames = self.state["frames"]
        if len(frames) == 1:  # the root frame stays: its context is the record
            self._end("flow end")
            return
        child = frames.pop()
        parent = frames[-1]
        definition = self._definition(parent)
        widget = definition.states[parent["state"]]
        variables = dict(child["context"]["flow"]["variables"])
        self._advance(definition, widget, "completed", variables, replace=True)

    def _end(self, reason: str) -> None:
        self.ended = reason
        self.state["waiting"] = None
        self.runtime.emit({"type": "end", "reason": reason})

    def _resume(self, event: str, outputs: dict[str, Any]) -> None:
        waiting = self.state.get("waiting")
        if not waiting:
            return
        self.state["waiting"] = None
        frame = self.state["frames"][-1]
        definition = self._definition(frame)
        widget = definition.states[waiting["widget"]]
        self._advance(definition, widget, event, outputs)
        self.run()

    def _definition(self, frame: dict[str, Any]) -> FlowDefinition:
        raw, mapping = self.runtime.definition(frame["revision"])
        frame.setdefault("mapping", mapping)
        return FlowDefinition.parse(raw)

    def _trigger_event(self, definition: FlowDefinition, frame: dict[str, Any]) -> str:
        trigger = definition.states.get(definition.initial_state, {})
        context = frame["context"]["trigger"]
        if "parent" in context:
            return "incomingParent"
        if "request" in context:
            return "incomingRequest"
        if not definition.wired(trigger, "incomingMessage") and definition.wired(
            trigger, "incomingConversationMessage"
        ):
            context["conversation"] = dict(context.get("message", {}))
            return "incomingConversationMessage"
        return "incomingMessage"

    # -- helpers for widgets ----------------------------------------------------

    def render(self, text: Any, context: dict[str, Any]) -> str:
        if text is None:
            return ""
        text = str(text)
        if "{" not in text:
            return text
        return liquid.render(text, context)

    def mapping(self) -> dict[str, str]:
        return self.state["frames"][-1].get("mapping", {})

    def wait(self, widget: dict[str, Any], timeout: int) -> None:
        self.state["waiting"] = {"widget": widget["name"], "timeout": timeout}
        self.runtime.emit(
            {"type": "wait", "widget": widget["name"], "timeout": timeout}
        )

    def handoff_done(self, reason: str) -> None:
        self._end(reason)


def _changes(widget: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    """What a step changed in the context, for the execution's log."""
    if not outputs:
        return {}
    if widget.get("type") == "set-variables":
        return {f"flow.variables.{key}": value for key, value in outputs.items()}
    return {f"widgets.{widget['name']}": outputs}


# -- widgets ---------------------------------------------------------------------
# Each returns (event, outputs), or (None, {}) when it paused or ended the execution.

# (event, outputs) or (event, outputs, next) when the widget picks its transition.
Result = tuple[str | None, dict[str, Any]] | tuple[str, dict[str, Any], str | None]


def _integer(value: Any, default: int) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def _message(
    engine: Engine,
    widget: dict[str, Any],
    props: dict[str, Any],
    context: dict[str, Any],
) -> dict[str, Any]:
    variables = props.get("content_variables") or {}
    if isinstance(variables, str):
        variables = json.loads(engine.render(variables, context) or "{}")
    media = engine.render(props.get("media_url"), context).strip()
    return engine.runtime.send_message(
        widget=widget["name"],
        from_=engine.render(props.get("from") or "{{flow.channel.address}}", context),
        to=engine.render(props.get("to") or "{{contact.channel.address}}", context),
        body=engine.render(props.get("body"), context),
        media_urls=[media] if media else [],
        content_sid=str(props.get("content_sid") or "")
        if props.get("message_type") == "content_template"
        else "",
        content_variables={str(k): str(v) for k, v in variables.items()},
    )


def send_message(engine: Engine, widget, props, context) -> Result:
    try:
        outbound = _message(engine, widget, props, context)
    except SendFailed as exc:
        return "failed", {"error": str(exc)}
    return "sent", {"outbound": outbound}


def send_and_wait(engine: Engine, widget, props, context) -> Result:
    try:
        outbound = _message(engine, widget, props, context)
    except SendFailed as exc:
        return "deliveryFailure", {"error": str(exc)}
    context["widgets"].setdefault(widget["name"], {})["outbound"] = outbound
    engine.wait(widget, _integer(props.get("timeout"), DEFAULT_REPLY_TIMEOUT))
    return None, {}


def split(engine: Engine, widget, props, context) -> Result:
    value = engine.render(props.get("input"), context)
    for transition in widget.get("transitions", []):
        conditions = transition.get("conditions") or []
        if (
            transition.get("event") == "match"
            and conditions
            and all(
                _condition_holds(engine, condition, value, context)
                for condition in conditions
            )
        ):
            # Several transitions share the event "match": the first that holds wins.
            return "match", {}, transition.get("next") or None
    return "noMatch", {}


def _condition_holds(
    engine: Engine, condition: dict[str, Any], value: str, context: dict[str, Any]
) -> bool:
    arguments = condition.get("arguments") or []
    subject = engine.render(arguments[0], context) if arguments else value
    expected = engine.render(condition.get("value", ""), context)
    return operators.matches(
        str(condition.get("type")), subject, expected, tz=flow_time_zone()
    )


def flow_time_zone() -> ZoneInfo | None:
    """The zone split conditions compare times and dates in; None: TIME_ZONE."""
    name = settings.SWITCHBOARD_FLOW_TIME_ZONE
    return ZoneInfo(name) if name else None


def _typed(engine: Engine, item: dict[str, Any], context: dict[str, Any]) -> Any:
    rendered = engine.render(item.get("value", ""), context)
    if item.get("type") == "json_object":
        try:
            return json.loads(rendered)
        except ValueError:
            logger.info("variable %s is not JSON; kept as text", item.get("key"))
    return rendered


def set_variables(engine: Engine, widget, props, context) -> Result:
    values = {}
    for item in props.get("variables") or []:
        value = _typed(engine, item, context)
        context["flow"]["variables"][item["key"]] = value
        values[item["key"]] = value
    return "next", values


def run_subflow(engine: Engine, widget, props, context) -> Result:
    ref = str(props.get("flow_sid", ""))
    try:
        revision, name, raw, mapping = engine.runtime.load_flow(
            engine.mapping().get(ref, ref)
        )
    except LookupError as exc:
        return "failed", {"error": str(exc)}
    parameters = {
        item["key"]: _typed(engine, item, context)
        for item in props.get("parameters") or []
        if item.get("key")
    }
    child_context = {
        "trigger": {
            "parent": {
                "parameters": parameters,
                "execution_sid": context["flow"]["sid"],
                "flow_sid": context["flow"]["flow_sid"],
            }
        },
        "flow": {
            "data": {},
            "variables": {},
            "channel": dict(context["flow"]["channel"]),
            "flow_sid": ref,
            "sid": context["flow"]["sid"],
        },
        "contact": dict(context["contact"]),
        "widgets": {},
    }
    engine.state["frames"].append(
        {"revision": revision, "flow": name, "state": None, "context": child_context}
    )
    child = engine._definition(engine.state["frames"][-1])
    engine.state["frames"][-1]["state"] = child.initial_state
    trigger = child.states.get(child.initial_state, {})
    engine._advance(child, trigger, "incomingParent", {})
    return None, {}


def run_function(engine: Engine, widget, props, context) -> Result:
    name = function_name(props, engine.mapping())
    event = {
        str(item["key"]): engine.render(item.get("value", ""), context)
        for item in props.get("parameters") or []
        if item.get("key")
    }
    result = engine.runtime.call_function(widget=widget["name"], name=name, event=event)
    if not result.ok:
        return "fail", {}
    outputs: dict[str, Any] = {
        "body": result.body,
        "status_code": 200,
        "content_type": "text/plain",
    }
    if result.parsed is not None:
        outputs["parsed"] = result.parsed
        outputs["content_type"] = "application/json"
    return "success", outputs


def _http(engine: Engine, widget, props, context, *, method: str) -> HttpResult:
    parameters = [
        (str(item["key"]), engine.render(item.get("value", ""), context))
        for item in props.get("parameters") or []
        if item.get("key")
    ]
    return engine.runtime.http_request(
        widget=widget["name"],
        method=method,
        url=engine.render(props.get("url"), context),
        content_type=str(
            props.get("content_type") or "application/x-www-form-urlencoded"
        ),
        body=engine.render(props.get("body"), context),
        parameters=parameters,
    )


def http_request(engine: Engine, widget, props, context) -> Result:
    result = _http(
        engine, widget, props, context, method=str(props.get("method") or "GET").upper()
    )
    if not result.ok:
        return "failed", {}
    outputs: dict[str, Any] = {
        "body": result.body,
        "status_code": result.status_code,
        "content_type": result.content_type,
    }
    if result.parsed is not None:
        outputs["parsed"] = result.parsed
    return "success", outputs


def twiml_redirect(engine: Engine, widget, props, context) -> Result:
    result = _http(
        engine,
        widget,
        props,
        context,
        method=str(props.get("method") or "POST").upper(),
    )
    if result.ok:
        return "return", {"body": result.body}
    return ("timeout" if "timed out" in result.error else "fail"), {}


def _json_safe(value: Any) -> Any:
    """Strings escaped for the inside of a JSON string literal, recursively."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)[1:-1]
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


def _attributes(engine: Engine, source: str, context: dict[str, Any]) -> Any:
    """The task attributes: a JSON document written as Liquid.

    Flows write `"name": "{{trigger.message.ProfileName}}"`: a quote in what the
    customer typed would break the JSON, so a document that does not parse is
    rendered again with every string escaped for a JSON string.
    """
    rendered = engine.render(source, context)
    if not rendered.strip():
        return {}
    try:
        return json.loads(rendered)
    except ValueError:
        return json.loads(engine.render(source, _json_safe(context)))


def send_to_flex(engine: Engine, widget, props, context) -> Result:
    mapping = engine.mapping()
    workflow = mapping.get(str(props.get("workflow")), str(props.get("workflow")))
    channel = mapping.get(str(props.get("channel")), str(props.get("channel")))
    try:
        attributes = _attributes(engine, str(props.get("attributes") or "{}"), context)
    except ValueError as exc:
        return "failedToEnqueue", {"error": f"attributes are not JSON: {exc}"}
    priority = _integer(engine.render(props.get("priority"), context), 0)
    timeout = _integer(engine.render(props.get("timeout"), context), 86400)
    try:
        task = engine.runtime.create_task(
            widget=widget["name"],
            workflow=workflow,
            channel=channel,
            attributes=attributes,
            priority=priority,
            timeout=timeout,
        )
    except HandoffFailed as exc:
        return "failedToEnqueue", {"error": str(exc)}
    engine.runtime.emit(
        {
            "type": "handoff",
            "widget": widget["name"],
            "workflow": workflow,
            "channel": channel,
            "attributes": attributes,
            "priority": priority,
        }
    )
    context["widgets"].setdefault(widget["name"], {}).update(task)
    engine.handoff_done("handed to an agent")
    return None, {}


def trigger(engine: Engine, widget, props, context) -> Result:
    # Reached again by a loop back to the trigger: Studio ends there.
    raise Stop("flow end")


_HANDLERS: dict[str, Callable[..., Result]] = {
    "trigger": trigger,
    "send-message": send_message,
    "send-and-wait-for-reply": send_and_wait,
    "split-based-on": split,
    "set-variables": set_variables,
    "run-subflow": run_subflow,
    "run-function": run_function,
    "make-http-request": http_request,
    "send-to-flex": send_to_flex,
    "add-twiml-redirect": twiml_redirect,
}
