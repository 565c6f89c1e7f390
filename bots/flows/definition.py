"""Studio flow definitions: what each widget is, and validation that reports every
problem at once, each naming its state and property."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bots.flows import liquid, operators

WIDGET_EVENTS: dict[str, frozenset[str]] = {
    "trigger": frozenset(
        {
            "incomingMessage",
            "incomingConversationMessage",
            "incomingRequest",
            "incomingParent",
            "incomingCall",
        }
    ),
    "send-message": frozenset({"sent", "failed"}),
    "send-and-wait-for-reply": frozenset(
        {"incomingMessage", "timeout", "deliveryFailure"}
    ),
    "split-based-on": frozenset({"match", "noMatch"}),
    "set-variables": frozenset({"next"}),
    "run-subflow": frozenset({"completed", "failed"}),
    "run-function": frozenset({"success", "fail"}),
    "make-http-request": frozenset({"success", "failed"}),
    "send-to-flex": frozenset({"callComplete", "failedToEnqueue", "callFailure"}),
    "add-twiml-redirect": frozenset({"return", "timeout", "fail"}),
}
VOICE_WIDGETS = frozenset(
    {
        "say-play",
        "gather-input-on-call",
        "connect-call-to",
        "record-voicemail",
        "make-outgoing-call-v2",
        "enqueue-call",
        "record-call",
        "capture-payments",
        "fork-stream",
        "connect-virtual-agent",
    }
)
MESSAGING_TRIGGERS = (
    "incomingMessage",
    "incomingConversationMessage",
    "incomingRequest",
    "incomingParent",
)
_REQUIRED = {
    "split-based-on": ("input",),
    "set-variables": ("variables",),
    "run-subflow": ("flow_sid",),
    "make-http-request": ("url", "method"),
    "send-to-flex": ("workflow", "channel"),
    "add-twiml-redirect": ("url",),
}


class InvalidFlow(ValueError):
    """A definition that cannot run; `problems` names each state and property."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class FlowDefinition:
    """A parsed definition: states by name, and where each event leads."""

    raw: dict[str, Any]
    states: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> "FlowDefinition":
        states = {s["name"]: s for s in raw.get("states", []) if isinstance(s, dict)}
        return cls(raw=raw, states=states)

    @property
    def initial_state(self) -> str:
        return str(self.raw.get("initial_state") or "Trigger")

    def next_state(self, state: dict[str, Any], event: str) -> str | None:
        """Where `event` of `state` leads; None ends the execution."""
        for transition in _transitions(state):
            if transition.get("event") == event:
                return transition.get("next") or None
        return None

    def wired(self, state: dict[str, Any], event: str) -> bool:
        return any(
            t.get("event") == event and t.get("next") for t in _transitions(state)
        )


@dataclass
class Refs:
    """How Twilio ids in a definition map to local objects, for validation and runs.

    Each lookup returns the local name, or None when the id is unmapped.
    """

    workflow: Callable[[str], str | None]
    channel: Callable[[str], str | None]
    flow: Callable[[str], str | None]
    function: Callable[[dict[str, Any]], str | None]


def validate(raw: Any, refs: Refs) -> dict[str, str]:
    """Check a definition; return the id mapping it needs, or raise InvalidFlow.

    Every problem is reported, each as `state "NAME": what is wrong`.
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("states"), list):
        raise InvalidFlow(['the definition must be an object with a "states" list'])
    problems: list[str] = []
    mapping: dict[str, str] = {}
    definition = FlowDefinition.parse(raw)
    problems += _check_names(raw)
    if definition.initial_state not in definition.states:
        problems.append(f'initial_state "{definition.initial_state}" is not a state')
    reachable = _reachable(definition)
    for name, state in definition.states.items():
        for problem in _check_state(definition, state, reachable, refs, mapping):
            problems.append(f'state "{name}": {problem}')
    if problems:
        raise InvalidFlow(problems)
    return mapping


def _check_names(raw: dict[str, Any]) -> list[str]:
    problems, seen = [], set()
    for index, state in enumerate(raw["states"], start=1):
        if not isinstance(state, dict) or not state.get("name"):
            problems.append(f"state {index}: has no name")
            continue
        if state["name"] in seen:
            problems.append(f'state "{state["name"]}": the name is used twice')
        seen.add(state["name"])
    return problems


def _reachable(definition: FlowDefinition) -> set[str]:
    """States a messaging trigger can reach."""
    start = definition.states.get(definition.initial_state)
    if start is None:
        return set()
    todo = [
        t.get("next")
        for t in _transitions(start)
        if t.get("event") in MESSAGING_TRIGGERS and t.get("next")
    ]
    seen = {definition.initial_state}
    while todo:
        name = todo.pop()
        if not isinstance(name, str) or name in seen or name not in definition.states:
            continue
        seen.add(name)
        todo += [t.get("next") for t in _transitions(definition.states[name])]
    return seen


def _transitions(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The state's well-formed transitions; malformed ones are reported elsewhere."""
    transitions = state.get("transitions")
    if not isinstance(transitions, list):
        return []
    return [t for t in transitions if isinstance(t, dict)]


def _check_state(
    definition: FlowDefinition,
    state: dict[str, Any],
    reachable: set[str],
    refs: Refs,
    mapping: dict[str, str],
) -> Iterator[str]:
    kind = state.get("type")
    if kind in VOICE_WIDGETS:
        if state["name"] in reachable:
            yield f"{kind} is a voice widget: not supported in a messaging flow"
        return
    if kind not in WIDGET_EVENTS:
        yield f'unknown widget type "{kind}"'
        return
    properties = state.get("properties") or {}
    if not isinstance(properties, dict):
        yield "properties must be an object"
        return
    yield from _check_transitions(definition, state)
    yield from _check_required(kind, properties)
    yield from _check_liquid(properties)
    if kind == "split-based-on":
        yield from _check_conditions(state)
    yield from _check_refs(kind, properties, refs, mapping)


def _check_transitions(
    definition: FlowDefinition, state: dict[str, Any]
) -> Iterator[str]:
    allowed = WIDGET_EVENTS[state["type"]]
    raw = state.get("transitions")
    if not isinstance(raw, list) or len(_transitions(state)) != len(raw):
        yield "transitions must be a list of objects"
    for transition in _transitions(state):
        event, target = transition.get("event"), transition.get("next")
        if event not in allowed:
            yield f'unknown event "{event}" for {state["type"]}'
        if target and target not in definition.states:
            yield f'transition "{event}": next "{target}" is not a state'


def _check_required(kind: str, properties: dict[str, Any]) -> Iterator[str]:
    for key in _REQUIRED.get(kind, ()):
        if properties.get(key) in (None, "", []):
            yield f'property "{key}" is required'
    if kind in ("send-message", "send-and-wait-for-reply"):
        templated = properties.get("message_type") == "content_template"
        needed = "content_sid" if templated else "body"
        if not properties.get(needed) and not properties.get("media_url"):
            yield f'property "{needed}" is required'
    if kind == "run-function" and not (
        properties.get("url") or properties.get("function_sid")
    ):
        yield 'property "url" is required'
    if kind == "set-variables":
        for index, item in enumerate(properties.get("variables") or [], start=1):
            if not isinstance(item, dict) or not item.get("key"):
                yield f"variable {index}: has no key"


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key != "offset":
                yield from _strings(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _check_liquid(properties: dict[str, Any]) -> Iterator[str]:
    for path, text in _strings(properties, ""):
        if "{{" in text or "{%" in text:
            error = liquid.check_syntax(text)
            if error:
                yield f'property "{path}": Liquid does not parse: {error}'


def _check_conditions(state: dict[str, Any]) -> Iterator[str]:
    matches = [t for t in _transitions(state) if t.get("event") == "match"]
    for number, transition in enumerate(matches, start=1):
        conditions = transition.get("conditions") or []
        if not isinstance(conditions, list) or not all(
            isinstance(c, dict) for c in conditions
        ):
            yield f"condition {number}: conditions must be a list of objects"
            continue
        for condition in conditions:
            for argument in condition.get("arguments") or []:
                error = liquid.check_syntax(str(argument))
                if error:
                    yield f"condition {number}: argument does not parse: {error}"
            operator = condition.get("type")
            if operator not in operators.OPERATORS:
                yield f'condition {number}: unknown operator "{operator}"'
                continue
            value = str(condition.get("value", ""))
            error = liquid.check_syntax(value) if "{" in value else None
            if error:
                yield f"condition {number}: Liquid does not parse: {error}"
            elif (
                operator == "regex"
                and "{" not in value
                and (problem := operators.regex_error(value))
            ):
                yield f"condition {number}: regex does not compile: {problem}"


def _check_refs(
    kind: str, properties: dict[str, Any], refs: Refs, mapping: dict[str, str]
) -> Iterator[str]:
    checks: list[tuple[str, str, Callable[[str], str | None]]] = []
    if kind == "send-to-flex":
        checks += [
            ("workflow", str(properties.get("workflow", "")), refs.workflow),
            ("channel", str(properties.get("channel", "")), refs.channel),
        ]
    if kind == "run-subflow":
        checks.append(("flow_sid", str(properties.get("flow_sid", "")), refs.flow))
    for key, ref, lookup in checks:
        local = lookup(ref)
        if local is None:
            yield f'{key} "{ref}" is not mapped to a local {key.split("_")[0]}'
        else:
            mapping[ref] = local
    if kind == "run-function":
        function = refs.function(properties)
        ref = str(properties.get("url") or properties.get("function_sid"))
        if function is None:
            yield f'function "{ref}" is not registered'
        else:
            mapping[ref] = function
