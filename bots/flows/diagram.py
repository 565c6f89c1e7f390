"""Draw a Studio flow definition as a static, self-contained SVG diagram.

Each state is a box at its canvas offset; each wired transition is an arrow
labelled with its event. Every piece of text from the definition is
XML-escaped, so the result is safe to embed with ``mark_safe``. Odd input is
skipped, never raised on.
"""

import math
import re
from collections import Counter
from typing import Any, NamedTuple
from xml.sax.saxutils import escape

W, H = 200, 56  # node size
MARGIN = 40
COLUMN_STEP, ROW_STEP = 400, 160  # layout of states without an offset
EDGE_COLOUR, LABEL_COLOUR = "#8a949e", "#4b5563"
KINDS = {  # family: its widget types
    "trigger": "trigger",
    "messaging": "send-message send-and-wait-for-reply",
    "logic": "split-based-on set-variables",
    "integration": "run-function make-http-request run-subflow add-twiml-redirect",
    "handoff": "send-to-flex",
}
FAMILIES = {kind: family for family, kinds in KINDS.items() for kind in kinds.split()}
PALETTE = {  # family: (fill, border)
    "trigger": ("#e7eff9", "#4f7cac"),
    "messaging": ("#e6f3ea", "#4a8c62"),
    "logic": ("#fdf3e1", "#b7892f"),
    "integration": ("#efe9f7", "#7b62a3"),
    "handoff": ("#fbe9eb", "#b0566a"),
    "other": ("#f1f2f3", "#8c9196"),
}
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

Point = tuple[float, float]
Edge = tuple[str, str, str]  # source, target, label
Curve = tuple[Point, Point, Point]  # start, control, end of a quadratic Bézier
Box = tuple[float, float, float, float]  # left, top, right, bottom


class State(NamedTuple):
    name: str
    kind: str
    transitions: list[Any]
    offset: Point | None


def _f(value: float) -> str:
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _p(point: Point) -> str:
    return f"{_f(point[0])},{_f(point[1])}"


def _text(value: object, limit: int) -> tuple[str, str]:
    """(shown, full) text, both escaped; shown is cut to limit with an ellipsis."""
    full = _NOT_XML.sub("", value) if isinstance(value, str) else ""
    shown = full if len(full) <= limit else full[: limit - 1] + "\u2026"
    return escape(shown), escape(full)


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return max(-1e6, min(1e6, number)) if math.isfinite(number) else None


def _offset(props: object) -> Point | None:
    offset = props.get("offset") if isinstance(props, dict) else None
    if not isinstance(offset, dict):
        return None
    x, y = _num(offset.get("x")), _num(offset.get("y"))
    return None if x is None or y is None else (x, y)


def _states(definition: object) -> list[State]:
    raw = definition.get("states") if isinstance(definition, dict) else None
    states: dict[str, State] = {}
    for item in raw if isinstance(raw, list) else []:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name or name in states:
            continue
        kind, transitions = item.get("type"), item.get("transitions")
        states[name] = State(
            name,
            kind if isinstance(kind, str) else "",
            transitions if isinstance(transitions, list) else [],
            _offset(item.get("properties")),
        )
    return list(states.values())


def _layout(states: list[State]) -> dict[str, Point]:
    """Canvas offsets; states without one go in a column right of the others."""
    placed = {s.name: s.offset for s in states if s.offset is not None}
    x = max((p[0] for p in placed.values()), default=-COLUMN_STEP) + COLUMN_STEP
    y = min((p[1] for p in placed.values()), default=0.0)
    for state in states:
        if state.offset is None:
            placed[state.name], y = (x, y), y + ROW_STEP
    return placed


def _label(transition: dict[str, Any]) -> str:
    event = transition.get("event")
    if event == "match" and isinstance(transition.get("conditions"), list):
        for condition in transition["conditions"]:
            name = condition.get("friendly_name") if isinstance(condition, dict) else 0
            if isinstance(name, str) and name.strip():
                return name
    return event if isinstance(event, str) else ""


def _edges(states: list[State], positions: dict[str, Point]) -> list[Edge]:
    """(source, target, label) of every transition whose next is a drawn state."""
    edges = []
    for state in states:
        for transition in state.transitions:
            target = transition.get("next") if isinstance(transition, dict) else None
            if isinstance(target, str) and target in positions:
                edges.append((state.name, target, _label(transition)))
    return edges


def _border(centre: Point, toward: Point) -> Point:
    """Where the ray from a node's centre toward a point leaves the node."""
    dx, dy = toward[0] - centre[0], toward[1] - centre[1]
    scales = [W / 2 / abs(dx)] if dx else []
    scales += [H / 2 / abs(dy)] if dy else []
    scale = min(scales, default=0.0)
    return centre[0] + dx * scale, centre[1] + dy * scale


def _curve(a: Point, b: Point, bend: float) -> Curve:
    """Start, control and end point of an arrow from node a to node b."""
    c1, c2 = (a[0] + W / 2, a[1] + H / 2), (b[0] + W / 2, b[1] + H / 2)
    dx, dy = c2[0] - c1[0], c2[1] - c1[1]
    length = math.hypot(dx, dy) or 1.0
    ctrl = (
        (c1[0] + c2[0]) / 2 - dy / length * bend * 2,
        (c1[1] + c2[1]) / 2 + dx / length * bend * 2,
    )
    return _border(c1, ctrl), ctrl, _border(c2, ctrl)


def _at(curve: Curve, t: float) -> Point:
    (sx, sy), (cx, cy), (ex, ey) = curve
    u = 1 - t
    return (
        u * u * sx + 2 * u * t * cx + t * t * ex,
        u * u * sy + 2 * u * t * cy + t * t * ey,
    )


def _routed(a: Point, b: Point, bend: float, others: list[Point]) -> list[Point]:
    """Of a few bends, the curve crossing the fewest other nodes, as its
    start, control and end points followed by points along it."""
    best: tuple[float, list[Point]] = (math.inf, [])
    for extra in (0, 30, -30, 60, -60, 90, -90, 120, -120, 180, -180):
        curve = _curve(a, b, bend + extra)
        n = int(min(100, max(8, math.dist(curve[0], curve[2]) / 10)))
        points = [*curve, *(_at(curve, i / n) for i in range(1, n))]
        hits = sum(
            x - 6 < px < x + W + 6 and y - 6 < py < y + H + 6
            for x, y in others
            for px, py in points[3:]
        )
        best = min(best, (hits, points), key=lambda pair: pair[0])
        if not hits:
            break
    return best[1]


def _shape(
    a: Point, b: Point, index: int, shift: float, others: list[Point]
) -> tuple[str, list[Point], list[Point]]:
    """Path data, label places (best first) and points along one arrow."""
    if a == b:  # a loop on the node's right side
        r, x, y = 36 + 16 * index, a[0] + W, a[1]
        path = f"M{_p((x, y + 14))} C{_p((x + r, y - 10))} {_p((x + r, y + H + 10))}"
        right = (x + r * 0.75, y + H / 2)
        return f"{path} {_p((x, y + H - 14))}", [(right[0] + 6, right[1])], [right]
    back = (b[1], b[0]) < (a[1], a[0])  # up, or left on the same row
    points = _routed(a, b, (index - shift) * 36 + (44 if back else 0), others)
    curve = (points[0], points[1], points[2])
    t = 0.5 + (index - shift) * 0.2
    places = [
        _at(curve, min(0.8, max(0.2, t + dt))) for dt in (0, -0.1, 0.1, -0.2, 0.2)
    ]
    return "M{} Q{} {}".format(*map(_p, curve)), places, points[3:]


def _edge_parts(
    edges: list[Edge], positions: dict[str, Point]
) -> tuple[list[str], list[str], list[Box]]:
    """SVG paths, SVG labels, and the boxes of nodes, labels and arrows."""
    total = Counter((source, target) for source, target, _ in edges)
    seen = Counter[tuple[str, str]]()
    shapes = []
    for source, target, _ in edges:
        index, shift = seen[(source, target)], (total[(source, target)] - 1) / 2
        seen[(source, target)] += 1
        others = [p for n, p in positions.items() if n not in (source, target)]
        a, b = positions[source], positions[target]
        shapes.append(_shape(a, b, index, shift, others))
    boxes = [(x, y, x + W, y + H) for x, y in positions.values()]
    dots = [[(x, y, x, y) for x, y in points] for _, _, points in shapes]
    labels = []
    for i, ((source, target, label), (_, places, _)) in enumerate(
        zip(edges, shapes, strict=True)
    ):
        shown, full = _text(label, 24)
        loop = positions[source] == positions[target]
        avoid = boxes + [dot for j, row in enumerate(dots) if j != i for dot in row]
        box = _place(places, 6.6 * min(len(full), 24) + 6, loop, avoid)
        boxes.append(box)
        tip = f"<title>{full}</title>" if shown != full else ""
        labels.append(
            f'<text class="edge-label" x="{_f((box[0] + box[2]) / 2)}"'
            f' y="{_f(box[1] + 8)}" dy="0.35em">{tip}{shown}</text>'
        )
    paths = [
        f'<path class="edge" d="{d}" marker-end="url(#sb-arrow)"/>' for d, *_ in shapes
    ]
    return paths, labels, boxes + [dot for row in dots for dot in row]


def _place(places: list[Point], width: float, loop: bool, taken: list[Box]) -> Box:
    """The box of the first label place that overlaps nothing already drawn."""
    shifts = [0.0] if loop else [-width / 2, 6.0, -width - 6]  # centred, beside
    spots = [(x + dx, y - 8, x + dx + width, y + 8) for dx in shifts for x, y in places]
    for one in spots:
        if not any(
            one[0] < two[2] and two[0] < one[2] and one[1] < two[3] and two[1] < one[3]
            for two in taken
        ):
            return one
    return spots[0]


def _node(state: State, at: Point) -> str:
    family = FAMILIES.get(state.kind, "other")
    fill, border = PALETTE[family]
    dash = ' stroke-dasharray="5 3"' if family == "other" else ""
    name, full = _text(state.name, 22)
    kind, full_kind = _text(state.kind or "unknown", 30)
    x, y = at
    return (
        f'<g class="node {family}"><title>{full} ({full_kind})</title>'
        f'<rect x="{_f(x)}" y="{_f(y)}" width="{W}" height="{H}" rx="10"'
        f' fill="{fill}" stroke="{border}" stroke-width="1.5"{dash}/>'
        f'<text x="{_f(x + W / 2)}" y="{_f(y + 25)}" font-size="14"'
        f' font-weight="bold" fill="#1f2933">{name}</text>'
        f'<text x="{_f(x + W / 2)}" y="{_f(y + 43)}" font-size="11"'
        f' fill="#5f6b76">{kind}</text></g>'
    )


def render_svg(definition: dict[str, Any]) -> str:
    """The flow as a read-only SVG document (a string safe to embed in HTML)."""
    states = _states(definition)
    positions = _layout(states)
    paths, labels, boxes = _edge_parts(_edges(states, positions), positions)
    left = min((b[0] for b in boxes), default=0.0) - MARGIN
    top = min((b[1] for b in boxes), default=0.0) - MARGIN
    width = max((b[2] for b in boxes), default=0.0) + MARGIN - left
    height = max((b[3] for b in boxes), default=0.0) + MARGIN - top
    nodes = [_node(state, positions[state.name]) for state in states]
    count = f"{len(states)} widget{'' if len(states) == 1 else 's'}"
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" role="img"'
        f' aria-label="Flow diagram: {count}"'
        f' viewBox="{_f(left)} {_f(top)} {_f(width)} {_f(height)}"'
        f' width="{_f(width)}" height="{_f(height)}"'
        " font-family=\"system-ui, -apple-system, 'Segoe UI', sans-serif\">"
        '<defs><marker id="sb-arrow" viewBox="0 0 10 10" refX="10" refY="5"'
        ' markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse"'
        f' orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{EDGE_COLOUR}"/>'
        f'</marker></defs><g class="edges" fill="none" stroke="{EDGE_COLOUR}"'
        f' stroke-width="1.5">{"".join(paths)}</g>'
        f'<g class="nodes" text-anchor="middle">{"".join(nodes)}</g>'
        f'<g class="labels" font-size="11" fill="{LABEL_COLOUR}" stroke="#fff"'
        ' text-anchor="middle" stroke-width="4" stroke-linejoin="round"'
        ' paint-order="stroke">'
        f"{''.join(labels)}</g></svg>"
    )
