"""Small builders for Studio flow definitions, shaped like real exports.

Each widget helper returns one state: `{"name", "type", "transitions",
"properties"}`, listing every event its widget supports (wired or not), with an
`offset` as Studio writes it. `flow(*states)` wraps them in a document.
"""

from typing import Any

State = dict[str, Any]


def flow(*states: State, initial: str = "Trigger") -> dict[str, Any]:
    return {
        "description": "a test flow",
        "states": list(states),
        "initial_state": initial,
        "flags": {"allow_concurrent_calls": True},
    }


def _state(
    name: str, kind: str, transitions: list[dict[str, Any]], **properties: Any
) -> State:
    return {
        "name": name,
        "type": kind,
        "transitions": transitions,
        "properties": {"offset": {"x": 0, "y": 0}, **properties},
    }


def _events(**wired: str | None) -> list[dict[str, Any]]:
    return [
        {"event": event, **({"next": target} if target else {})}
        for event, target in wired.items()
    ]


def trigger(
    message: str | None = None,
    *,
    conversation: str | None = None,
    parent: str | None = None,
    request: str | None = None,
    call: str | None = None,
) -> State:
    return _state(
        "Trigger",
        "trigger",
        _events(
            incomingMessage=message,
            incomingCall=call,
            incomingConversationMessage=conversation,
            incomingRequest=request,
            incomingParent=parent,
        ),
    )


def send(name: str, body: str, *, sent: str | None = None, **props: Any) -> State:
    return _state(
        name, "send-message", _events(sent=sent, failed=None), body=body, **props
    )


def ask(
    name: str,
    body: str,
    *,
    reply: str | None = None,
    timeout: str | None = None,
    seconds: str | int = "3600",
) -> State:
    return _state(
        name,
        "send-and-wait-for-reply",
        _events(incomingMessage=reply, timeout=timeout, deliveryFailure=None),
        body=body,
        timeout=seconds,
    )


def split(
    name: str,
    input: str,
    *matches: tuple[str, str, str | None],
    no_match: str | None = None,
) -> State:
    """`matches`: (operator, value, next), each a match transition of one condition."""
    transitions: list[dict[str, Any]] = _events(noMatch=no_match)
    for operator, value, target in matches:
        transition: dict[str, Any] = {
            "event": "match",
            "conditions": [
                {
                    "friendly_name": f"{operator} {value}",
                    "arguments": [input],
                    "type": operator,
                    "value": value,
                }
            ],
        }
        if target:
            transition["next"] = target
        transitions.append(transition)
    return _state(name, "split-based-on", transitions, input=input)


def set_variables(
    name: str, *variables: dict[str, Any], next: str | None = None
) -> State:
    return _state(name, "set-variables", _events(next=next), variables=list(variables))


def function(
    name: str,
    url: str,
    /,
    *,
    success: str | None = None,
    fail: str | None = None,
    **parameters: str,
) -> State:
    return _state(
        name,
        "run-function",
        _events(success=success, fail=fail),
        service_sid="ZS00000000000000000000000000000000",
        environment_sid="ZE00000000000000000000000000000000",
        function_sid="ZH00000000000000000000000000000000",
        url=url,
        parameters=[{"key": k, "value": v} for k, v in parameters.items()],
    )


def http(
    name: str,
    url: str,
    *,
    success: str | None = None,
    failed: str | None = None,
    method: str = "GET",
) -> State:
    return _state(
        name,
        "make-http-request",
        _events(success=success, failed=failed),
        method=method,
        url=url,
        content_type="application/json;charset=utf-8",
    )


def subflow(
    name: str,
    flow_sid: str,
    /,
    *,
    completed: str | None = None,
    failed: str | None = None,
    **parameters: str,
) -> State:
    return _state(
        name,
        "run-subflow",
        _events(completed=completed, failed=failed),
        flow_sid=flow_sid,
        flow_revision="LatestPublished",
        parameters=[{"key": k, "value": v} for k, v in parameters.items()],
    )


def flex(
    name: str,
    *,
    workflow: str,
    channel: str,
    attributes: str = "{}",
    priority: str = "0",
    timeout: str = "3600",
    failed: str | None = None,
) -> State:
    return _state(
        name,
        "send-to-flex",
        _events(callComplete=None, failedToEnqueue=failed, callFailure=None),
        workflow=workflow,
        channel=channel,
        attributes=attributes,
        priority=priority,
        timeout=timeout,
    )


def voice(name: str, kind: str = "say-play", *, next: str | None = None) -> State:
    """A voice-only widget (its events as `say-play` has them)."""
    return _state(
        name, kind, _events(audioComplete=next), say="Hola", loop=1, language="es-MX"
    )
