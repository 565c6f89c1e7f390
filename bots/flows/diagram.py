"""Draw a Studio flow definition as a static, self-contained SVG diagram.

States are boxes at their canvas offsets, wired transitions are labelled arrows.
All text from the definition is XML-escaped (safe for ``mark_safe``); whatever
cannot be drawn is skipped, never raised on.
"""

import math
import re
from collections import Counter
from typing import Any, NamedTuple
from xml.sax.saxutils import escape

W, H, MARGIN = 200, 56, 40  # node size, space around the drawing
COLUMN_STEP, ROW_STEP = 400, 160  # where states without an offset go
EDGE_COLOUR = "#8a949e"
KINDS = {  # family: its widget types; anything else is "other" (voice, unknown)
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
Box = tuple[float, float, float, float]  # left, top, right, bottom
Curve = tuple[Point, Point, Point]  # start, control, end of a quadratic Bézier
Edge = tuple[str, str, str]  # source, target, label
Shape = tuple[str, list[Point], list[Point]]  # path, label places, points along


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


def _text(value: str, limit: int) -> tuple[str, str]:
    """(shown, full), both escaped; shown is cut to limit with an ellipsis."""
    full = _NOT_XML.sub("", value)
    shown = full if len(full) <= limit else full[: limit - 1] + "\u2026"
    return escape(shown), escape(full)


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
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
    """Every transition whose next is a drawn state."""
    edges = []
    for state in states:
        for transition in state.transitions:
            target = transition.get("next") if isinstance(transition, dict) else None
            if isinstance(target, str) and target in positions:
                edges.append((state.name, target, _label(transition)))
    return edges


def _bounds(points: list[Point]) -> Box:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def _overlap(one: Box, two: Box) -> bool:
    return (
        one[0] <= two[2] and two[0] <= one[2] and one[1] <= two[3] and two[1] <= one[3]
    )


def _border(centre: Point, toward: Point) -> Point:
    """Where the ray from a node's centre toward a point leaves the node."""
    dx, dy = toward[0] - centre[0], toward[1] - centre[1]
    scales = [W / 2 / abs(dx)] if dx else []
    scale = min(scales + ([H / 2 / abs(dy)] if dy else []), default=0.0)
    return centre[0] + dx * scale, centre[1] + dy * scale


def _curve(a: Point, b: Point, bend: float) -> Curve:
    """An arrow from node a to node b whose middle is bend off the straight line."""
    c1, c2 = (a[0] + W / 2, a[1] + H / 2), (b[0] + W / 2, b[1] + H / 2)
    dx, dy = c2[0] - c1[0], c2[1] - c1[1]
    unit = 2 * bend / (math.hypot(dx, dy) or 1.0)
    ctrl = ((c1[0] + c2[0]) / 2 - dy * unit, (c1[1] + c2[1]) / 2 + dx * unit)
    return _border(c1, ctrl), ctrl, _border(c2, ctrl)


def _at(curve: Curve, t: float) -> Point:
    (sx, sy), (cx, cy), (ex, ey) = curve
    one, two, three = (1 - t) ** 2, 2 * (1 - t) * t, t * t
    return one * sx + two * cx + three * ex, one * sy + two * cy + three * ey


def _routed(a: Point, b: Point, bend: float, others: list[Point]) -> Curve:
    """Of a few bends, the curve that crosses the fewest other nodes."""
    best: tuple[float, Curve] = (math.inf, _curve(a, b, bend))
    for extra in (0, 40, -40, 90, -90, 150, -150):
        curve = _curve(a, b, bend + extra)
        points, span = _along(curve), _bounds(list(curve))
        hits = sum(
            any(x - 6 < px < x + W + 6 and y - 6 < py < y + H + 6 for px, py in points)
            for x, y in others
            if _overlap((x, y, x + W, y + H), span)
        )
        best = min(best, (hits, curve), key=lambda pair: pair[0])
        if not hits:
            break
    return best[1]


def _along(curve: Curve) -> list[Point]:
    steps = int(min(80, max(8, math.dist(curve[0], curve[2]) / 12)))
    return [_at(curve, i / steps) for i in range(1, steps)]


def _shape(a: Point, b: Point, index: int, spread: float, others: list[Point]) -> Shape:
    """Path data, label places (best first) and points along one arrow."""
    if a == b:  # a loop on the node's right side
        r, x, y = 36 + 16 * index, a[0] + W, a[1]
        path = f"M{_p((x, y + 14))} C{_p((x + r, y - 10))} {_p((x + r, y + H + 10))}"
        right = (x + r * 0.75, y + H / 2)
        places = [(right[0] + 6, right[1] + dy) for dy in (0, -18, 18, -36, 36)]
        return f"{path} {_p((x, y + H - 14))}", places, [right]
    back = (b[1], b[0]) < (a[1], a[0])  # up, or left on the same row
    curve = _routed(a, b, spread * 36 + (44 if back else 0), others)
    ts = [
        min(0.8, max(0.2, 0.5 + spread * 0.2 + dt)) for dt in (0, -0.1, 0.1, -0.2, 0.2)
    ]
    return (
        "M{} Q{} {}".format(*map(_p, curve)),
        [_at(curve, t) for t in ts],
        _along(curve),
    )


def _label_box(width: float, places: list[Point], loop: bool, taken: list[Box]) -> Box:
    """The first place, centred on the arrow or beside it, clear of taken."""
    shifts = [0.0] if loop else [-width / 2, 6.0, -width - 6]
    spots = [(x + d, y - 8, x + d + width, y + 8) for d in shifts for x, y in places]
    return next((s for s in spots if not any(_overlap(s, t) for t in taken)), spots[0])


def _shapes(edges: list[Edge], positions: dict[str, Point]) -> list[Shape]:
    """The shape of each edge; parallel edges spread apart."""
    total, seen = Counter(edge[:2] for edge in edges), Counter[tuple[str, str]]()
    shapes = []
    for source, target, _ in edges:
        index = seen[(source, target)]
        seen[(source, target)] += 1
        spread = index - (total[(source, target)] - 1) / 2
        others = [p for n, p in positions.items() if n not in (source, target)]
        a, b = positions[source], positions[target]
        shapes.append(_shape(a, b, index, spread, others))
    return shapes


def _edge_parts(
    edges: list[Edge], positions: dict[str, Point]
) -> tuple[list[str], list[str], list[Box]]:
    """SVG paths and labels, and the boxes of all that is drawn."""
    shapes = _shapes(edges, positions)
    boxes = [(x, y, x + W, y + H) for x, y in positions.values()]
    spans = [_bounds(points) for _, _, points in shapes]
    labels = []
    for i, (source, target, label) in enumerate(edges):
        (shown, full), places = _text(label, 24), shapes[i][1]
        if not full:
            continue
        width, (x0, y0, x1, y1) = 6.6 * min(len(label), 24) + 6, _bounds(places)
        region = (x0 - width - 6, y0 - 8, x1 + width + 6, y1 + 8)
        near = [
            (x, y, x, y)
            for j, (_, _, points) in enumerate(shapes)
            if j != i and _overlap(region, spans[j])
            for x, y in points
        ]
        loop = positions[source] == positions[target]
        box = _label_box(width, places, loop, boxes + near)
        boxes.append(box)
        tip = f"<title>{full}</title>" if shown != full else ""
        labels.append(
            f'<text class="edge-label" x="{_f((box[0] + box[2]) / 2)}"'
            f' y="{_f(box[1] + 8)}" dy="0.35em">{tip}{shown}</text>'
        )
    paths = [
        f'<path class="edge" d="{d}" marker-end="url(#sb-arrow)"/>'
        for d, _, _ in shapes
    ]
    return paths, labels, boxes + spans


def _node(state: State, at: Point) -> str:
    family = FAMILIES.get(state.kind, "other")
    dash = ' stroke-dasharray="5 3"' if family == "other" else ""
    (name, full), (kind, full_kind) = _text(state.name, 22), _text(state.kind, 30)
    (x, y), (fill, border) = at, PALETTE[family]
    return (
        f'<g class="node {family}"><title>{full} ({full_kind or "?"})</title>'
        f'<rect x="{_f(x)}" y="{_f(y)}" width="{W}" height="{H}" rx="10"'
        f' fill="{fill}" stroke="{border}" stroke-width="1.5"{dash}/>'
        f'<text x="{_f(x + W / 2)}" y="{_f(y + 25)}" font-size="14"'
        f' font-weight="bold" fill="#1f2933">{name}</text>'
        f'<text x="{_f(x + W / 2)}" y="{_f(y + 43)}" font-size="11"'
        f' fill="#5f6b76">{kind or "unknown"}</text></g>'
    )


def render_svg(definition: dict[str, Any]) -> str:
    """The flow as a read-only SVG document, a string safe to embed in HTML."""
    states = _states(definition)
    positions = _layout(states)
    paths, labels, boxes = _edge_parts(_edges(states, positions), positions)
    left = min((b[0] for b in boxes), default=0.0) - MARGIN
    top = min((b[1] for b in boxes), default=0.0) - MARGIN
    width = max((b[2] for b in boxes), default=0.0) + MARGIN - left
    height = max((b[3] for b in boxes), default=0.0) + MARGIN - top
    nodes = "".join(_node(state, positions[state.name]) for state in states)
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
        f'<g class="nodes" text-anchor="middle">{nodes}</g>'
        '<g class="labels" font-size="11" fill="#4b5563" stroke="#fff"'
        ' stroke-width="4" stroke-linejoin="round" paint-order="stroke"'
        f' text-anchor="middle">{"".join(labels)}</g></svg>'
    )
