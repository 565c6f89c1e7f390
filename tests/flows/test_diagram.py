"""The flow diagram: a static SVG drawn from a Studio definition, safe to embed."""

import copy
import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bots.flows.diagram import render_svg

APPOINTMENTS = Path(__file__).parents[2] / "bots" / "demo_flows" / "appointments.json"
NS = "{http://www.w3.org/2000/svg}"
XSS = "<script>alert(1)</script>"


@pytest.fixture
def appointments() -> dict[str, Any]:
    return json.loads(APPOINTMENTS.read_text())


def state(name: Any, kind: Any = "send-message", x: Any = 0, y: Any = 0, **extra):
    """A state at (x, y) whose transitions are extra's event=next pairs."""
    transitions = [{"event": event, "next": nxt} for event, nxt in extra.items()]
    return {
        "name": name,
        "type": kind,
        "transitions": transitions,
        "properties": {"offset": {"x": x, "y": y}},
    }


def nodes(svg: str) -> dict[str, ET.Element]:
    """Each node's rect by the name it shows."""
    found = {}
    for group in ET.fromstring(svg).iter(f"{NS}g"):
        if group.get("class", "").startswith("node "):
            found[group.find(f"{NS}text").text] = group.find(f"{NS}rect")
    return found


def edges(svg: str) -> list[str]:
    return [p.get("d") for p in ET.fromstring(svg).iter(f"{NS}path") if p.get("class")]


def labels(svg: str) -> list[str]:
    """Each arrow's label, whole (from its tooltip when it is cut short)."""
    texts = ET.fromstring(svg).iter(f"{NS}text")
    return [
        t.findtext(f"{NS}title") or t.text or ""
        for t in texts
        if t.get("class") == "edge-label"
    ]


def test_appointments_draws_one_node_per_state(appointments):
    svg = render_svg(appointments)

    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label") == "Flow diagram: 13 widgets"
    assert set(nodes(svg)) == {s["name"] for s in appointments["states"]}


def test_appointments_draws_one_labelled_arrow_per_wired_transition(appointments):
    svg = render_svg(appointments)

    wired = [t for s in appointments["states"] for t in s["transitions"] if "next" in t]
    assert len(wired) == 17
    assert len(edges(svg)) == 17
    assert len(labels(svg)) == 17
    counted = Counter(labels(svg))
    assert counted["incomingMessage"] == 3  # Trigger, welcome, ask_document
    assert counted["incomingRequest"] == 1
    assert counted["timeout"] == 2
    assert counted["noMatch"] == 2
    # match transitions show their condition's friendly_name
    assert {"cancel", "agent", "3 or more"} <= set(counted)
    assert "match" not in counted
    assert "deliveryFailure" not in counted  # exported but not wired


def test_arrows_use_the_marker_defined_in_defs(appointments):
    root = ET.fromstring(render_svg(appointments))

    marker = root.find(f"{NS}defs/{NS}marker")
    assert marker is not None
    ref = f"url(#{marker.get('id')})"
    arrows = [p for p in root.iter(f"{NS}path") if p.get("class") == "edge"]
    assert arrows
    assert all(p.get("marker-end") == ref for p in arrows)


def test_nodes_sit_at_their_canvas_offsets():
    svg = render_svg({"states": [state("a", x=0, y=0), state("b", x="400", y="200")]})

    a, b = nodes(svg)["a"], nodes(svg)["b"]
    assert float(b.get("x")) - float(a.get("x")) == 400
    assert float(b.get("y")) - float(a.get("y")) == 200
    assert float(a.get("width")) == float(b.get("width"))


def test_the_view_box_holds_every_node_even_at_negative_offsets(appointments):
    svg = render_svg(appointments)

    left, top, width, height = map(float, ET.fromstring(svg).get("viewBox").split())
    for rect in nodes(svg).values():
        x, y = float(rect.get("x")), float(rect.get("y"))
        assert left < x and x + float(rect.get("width")) < left + width
        assert top < y and y + float(rect.get("height")) < top + height
    assert left < -400  # retry_menu and goodbye sit at x=-400


def test_an_arrow_ends_on_its_target_border():
    svg = render_svg({"states": [state("a", next="b"), state("b", x=0, y=200)]})

    (path,) = edges(svg)
    start, end = path.split()[0], path.split()[-1]
    assert start == "M100,56"  # bottom middle of a (200x56 at 0,0)
    assert end == "100,200"  # top middle of b


def test_states_without_an_offset_go_in_a_column_right_of_the_others():
    placed = [state("a", x=-100, y=50), state("b", x=300, y=400)]
    loose = [{"name": "c", "type": "set-variables"}, {"name": "d", "properties": {}}]

    svg = render_svg({"states": placed + loose})

    drawn = nodes(svg)
    c, d = drawn["c"], drawn["d"]
    assert float(c.get("x")) == float(d.get("x")) > float(drawn["b"].get("x"))
    assert float(c.get("y")) == 50  # the column starts level with the topmost
    assert float(d.get("y")) > float(c.get("y")) + float(c.get("height"))
    assert render_svg({"states": placed + loose}) == svg


def test_transitions_without_a_drawable_next_draw_nothing():
    flow = {
        "states": [
            {
                "name": "a",
                "type": "send-message",
                "transitions": [
                    {"event": "sent"},
                    {"event": "failed", "next": ""},
                    {"event": "other", "next": "nowhere"},
                    {"event": "fine", "next": "b"},
                ],
            },
            state("b", y=200),
        ]
    }

    svg = render_svg(flow)

    assert len(edges(svg)) == 1
    assert labels(svg) == ["fine"]


def test_a_match_without_a_friendly_name_is_labelled_match():
    split = state("split", "split-based-on")
    split["transitions"] = [
        {"event": "match", "next": "b", "conditions": [{"type": "regex"}]},
        {"event": "match", "next": "b", "conditions": [{"friendly_name": "yes"}]},
        {"event": "noMatch", "next": "b"},
    ]

    svg = render_svg({"states": [split, state("b", y=200)]})

    assert sorted(labels(svg)) == ["match", "noMatch", "yes"]
    assert len(set(edges(svg))) == 3  # parallel arrows do not overlap


def test_loops_back_and_self_loops_are_drawn():
    flow = {
        "states": [
            state("ask", "send-and-wait-for-reply", incomingMessage="check"),
            state("check", "split-based-on", y=200, noMatch="ask", retry="check"),
        ]
    }

    svg = render_svg(flow)

    assert sorted(labels(svg)) == ["incomingMessage", "noMatch", "retry"]
    loop = next(d for d in edges(svg) if d.startswith("M200,"))  # check's right side
    assert " C" in loop and loop.endswith(",242")  # back on check's right border


def test_every_text_from_the_definition_is_escaped():
    flow = {
        "states": [
            state(XSS, f"{XSS}-widget", **{XSS: "b&c", "ok": "b&c"}),
            state("b&c", "send-message", y=200),
        ]
    }
    flow["states"][0]["transitions"].append(
        {"event": "match", "next": "b&c", "conditions": [{"friendly_name": XSS}]}
    )

    svg = render_svg(flow)

    assert "<script" not in svg
    assert "&lt;script&gt;" in svg
    assert "b&amp;c" in svg
    assert XSS in labels(svg)  # the parser gets the text back unchanged
    assert "b&c" in nodes(svg)
    assert ET.fromstring(svg).find(f".//{NS}title").text.startswith(XSS)


def test_long_names_are_cut_with_an_ellipsis_and_kept_whole_in_a_tooltip():
    name = "ask_for_the_customer_document_number_again"

    svg = render_svg({"states": [state(name)]})

    (shown,) = nodes(svg)
    assert shown.endswith("\u2026") and name.startswith(shown[:-1])
    assert len(shown) <= 22
    assert f"<title>{name} (send-message)</title>" in svg


@pytest.mark.parametrize(
    ("kind", "family"),
    [
        ("trigger", "trigger"),
        ("send-message", "messaging"),
        ("send-and-wait-for-reply", "messaging"),
        ("split-based-on", "logic"),
        ("set-variables", "logic"),
        ("run-function", "integration"),
        ("make-http-request", "integration"),
        ("run-subflow", "integration"),
        ("add-twiml-redirect", "integration"),
        ("send-to-flex", "handoff"),
        ("say-play", "other"),
        ("something-new", "other"),
    ],
)
def test_nodes_are_coloured_by_family(kind, family):
    svg = render_svg({"states": [state("a", kind)]})

    (group,) = [
        g
        for g in ET.fromstring(svg).iter(f"{NS}g")
        if g.get("class", "")[:5] == "node "
    ]
    assert group.get("class") == f"node {family}"
    dashed = group.find(f"{NS}rect").get("stroke-dasharray") is not None
    assert dashed == (family == "other")


def test_the_same_flow_always_gives_the_same_string(appointments):
    before = copy.deepcopy(appointments)

    first = render_svg(appointments)

    assert render_svg(copy.deepcopy(appointments)) == first
    assert appointments == before  # the definition is left untouched


def test_the_svg_is_self_contained_and_has_no_scripts(appointments):
    svg = render_svg(appointments).lower()

    attributes = {name for e in ET.fromstring(svg).iter() for name in e.attrib}
    assert not [name for name in attributes if name.startswith("on")]

    assert "<script" not in svg
    assert "javascript:" not in svg
    assert "href" not in svg
    assert svg.count("http") == 1  # the SVG namespace only
    assert svg.count("url(") == svg.count("url(#sb-arrow)")


@pytest.mark.parametrize(
    "definition",
    [
        {},
        {"states": None},
        {"states": "Trigger"},
        {"states": {"name": "a"}},
        {"states": [None, 1, "a", [], {}, {"name": None}, {"name": ""}, {"name": 7}]},
        {"states": [{"name": "a", "type": 5, "transitions": "b", "properties": "x"}]},
        {"states": [{"name": "a", "properties": {"offset": [1, 2]}}]},
        {"states": [{"name": "a", "properties": {"offset": {"x": "far", "y": None}}}]},
        {"states": [{"name": "a", "properties": {"offset": {"x": "nan", "y": "inf"}}}]},
        {"states": [{"name": "a", "properties": {"offset": {"x": True, "y": 1e308}}}]},
        {
            "states": [
                {"name": "a", "properties": {"offset": {"x": 1e308, "y": -1e308}}}
            ]
        },
        {"states": [{"name": "a", "properties": {"offset": {"x": 10**400, "y": 0}}}]},
        {"states": [{"name": "a", "transitions": [None, 1, "x", {"next": ["a"]}]}]},
        {"states": [{"name": "a", "transitions": [{"next": {"a": 1}, "event": 3}]}]},
        {"states": [{"name": "a", "transitions": [{"next": "a", "event": None}]}]},
        {"states": [state("a", match="a"), state("a", x=400)]},  # a duplicate name
        {"states": [{"name": "a", "transitions": [{"event": "match", "next": "a"}]}]},
        {
            "states": [
                {
                    "name": "a\x00b\x1f\ud800",
                    "type": "x\x0by",
                    "transitions": [
                        {"event": "match", "next": "a\x00b\x1f\ud800", "conditions": 5},
                        {"event": "match", "next": "c", "conditions": [None, {}]},
                        {
                            "event": "match",
                            "next": "c",
                            "conditions": [
                                {"friendly_name": 9},
                                {"friendly_name": " "},
                            ],
                        },
                    ],
                },
                {"name": "c"},
            ]
        },
        {"states": [state(f"s{i}", x=0, y=0, next=f"s{i + 1}") for i in range(5)]},
    ],
)
def test_odd_input_never_raises_and_still_gives_valid_svg(definition):
    svg = render_svg(definition)

    root = ET.fromstring(svg)
    assert root.get("aria-label").startswith("Flow diagram: ")
    assert "nan" not in root.get("viewBox") and "inf" not in root.get("viewBox")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
STATE = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=8) | JSON,
        "type": st.sampled_from(["trigger", "say-play", "split-based-on"]) | JSON,
        "transitions": st.lists(
            st.fixed_dictionaries(
                {},
                optional={"event": JSON, "next": st.text(max_size=2) | JSON},
            )
            | JSON,
            max_size=4,
        )
        | JSON,
        "properties": st.fixed_dictionaries(
            {}, optional={"offset": st.dictionaries(st.sampled_from("xy"), JSON)}
        )
        | JSON,
    },
)


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({"states": st.lists(STATE | JSON, max_size=6)}) | JSON)
def test_any_json_gives_valid_svg(definition):
    ET.fromstring(render_svg(definition))


@pytest.mark.parametrize("definition", [None, [], "flow", 3])
def test_a_definition_that_is_not_a_dict_draws_an_empty_diagram(definition):
    svg = render_svg(definition)  # type: ignore[arg-type]

    assert ET.fromstring(svg).get("aria-label") == "Flow diagram: 0 widgets"


def test_skipped_states_are_not_counted():
    svg = render_svg({"states": [state("a"), {"type": "trigger"}, state("b", x=400)]})

    assert ET.fromstring(svg).get("aria-label") == "Flow diagram: 2 widgets"
    assert set(nodes(svg)) == {"a", "b"}


def test_one_widget_is_singular():
    svg = render_svg({"states": [state("a")]})

    assert 'aria-label="Flow diagram: 1 widget"' in svg
