"""Workflow configuration and matching rules: pure functions, no database.

Parsing names every bad field; `locate` walks filters and routing steps on the
task's age; `order_workers` and `task_sort_key` are the tie-breaks routesim's
output depends on.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from routing.workflows import (
    DEFAULT_FILTER,
    Candidate,
    ConfigurationError,
    Routing,
    locate,
    order_clauses,
    order_workers,
    parse_configuration,
    task_sort_key,
)

QUEUES = ("Spanish", "English", "Everyone")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def routing(*filters: dict[str, Any], default: str | None = None) -> Routing:
    """A parsed configuration from filter dicts and an optional default queue."""
    config: dict[str, Any] = {"filters": list(filters)}
    if default is not None:
        config["default_filter"] = {"queue": default}
    return parse_configuration({"task_routing": config}, QUEUES)


def flt(name: str, expression: str, *targets: dict[str, Any]) -> dict[str, Any]:
    return {
        "filter_friendly_name": name,
        "expression": expression,
        "targets": list(targets),
    }


THREE_STEPS = flt(
    "Spanish",
    "language == 'es'",
    {"queue": "Spanish", "timeout": 10},
    {"queue": "English", "timeout": 10, "priority": 5},
    {"queue": "Everyone", "timeout": 10, "priority": 10},
)


# ---------------------------------------------------------------- parsing


def problems_of(task_routing: Any) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        parse_configuration(task_routing, QUEUES)
    return caught.value.problems


def one_target(**target: Any) -> dict[str, Any]:
    return {"task_routing": {"filters": [flt("F", "1==1", target)]}}


WHERE = "task_routing.filters[0].targets[0]"


BAD_CONFIGURATIONS = [
    (None, "task_routing: must be an object"),
    ({"task_routing": []}, "task_routing: must be an object"),
    ({"task_routing": {"filters": "F"}}, "task_routing.filters: must be a list"),
    ({"task_routing": {"filters": ["x"]}}, "task_routing.filters[0]: must be"),
    (
        {"task_routing": {"filters": [flt("F", "1==1")]}},
        "task_routing.filters[0].targets: must be a non-empty list",
    ),
    (
        {"task_routing": {"filters": [flt("F", "language ==", {"queue": "x"})]}},
        "task_routing.filters[0].expression: ",
    ),
    (one_target(), f"{WHERE}.queue: is required"),
    (one_target(queue="Nope"), f"{WHERE}.queue: unknown queue 'Nope'"),
    (one_target(queue="Spanish", timeout="soon"), f"{WHERE}.timeout: must be"),
    (one_target(queue="Spanish", timeout=-1), f"{WHERE}.timeout: must be"),
    (one_target(queue="Spanish", priority=2**31), f"{WHERE}.priority: must be"),
    (one_target(queue="Spanish", expression="level >"), f"{WHERE}.expression: "),
    (one_target(queue="Spanish", skip_if="workers."), f"{WHERE}.skip_if: "),
    (
        one_target(queue="Spanish", order_by="worker.level UP"),
        f"{WHERE}.order_by: order_by direction must be ASC or DESC",
    ),
    (one_target(queue="Spanish", expression=3), f"{WHERE}.expression: must be"),
    (
        {"task_routing": {"default_filter": {"queue": "Nope"}}},
        "task_routing.default_filter.queue: unknown queue 'Nope'",
    ),
    (
        {"task_routing": {"default_filter": "Everyone"}},
        "task_routing.default_filter: must be an object",
    ),
]


@pytest.mark.parametrize(
    ("configuration", "expected"),
    BAD_CONFIGURATIONS,
    ids=[expected for _, expected in BAD_CONFIGURATIONS],
)
def test_a_bad_configuration_is_refused_naming_the_field(configuration, expected):
    problems = problems_of(configuration)

    assert any(p.startswith(expected) for p in problems), problems


def test_every_bad_field_is_named_not_only_the_first():
    configuration = {
        "task_routing": {
            "filters": [
                flt("A", "1==1", {"queue": "Nope"}, {"queue": "Spanish", "timeout": -5})
            ],
            "default_filter": {"queue": "Gone"},
        }
    }

    problems = problems_of(configuration)

    assert [p.split(":")[0] for p in problems] == [
        "task_routing.filters[0].targets[0].queue",
        "task_routing.filters[0].targets[1].timeout",
        "task_routing.default_filter.queue",
    ]
    assert str(ConfigurationError(problems)) == "; ".join(problems)


def test_a_good_configuration_keeps_every_target_field():
    target = {
        "queue": "Spanish",
        "priority": 7,
        "timeout": 60,
        "expression": "worker.level >= task.level",
        "order_by": "worker.level DESC",
        "skip_if": "workers.available == 0",
        "known_worker_friendly_name": "agent",
    }

    parsed = routing(flt("VIP", "vip == true", target), default="Everyone")

    (only,) = parsed.filters
    assert (only.name, only.expression) == ("VIP", "vip == true")
    (step,) = only.targets
    assert (step.queue, step.priority, step.timeout) == ("Spanish", 7, 60)
    assert step.expression == "worker.level >= task.level"
    assert (step.order_by, step.skip_if) == (
        "worker.level DESC",
        "workers.available == 0",
    )
    assert step.known_worker_friendly_name == "agent"
    assert parsed.default is not None
    assert parsed.default.name == DEFAULT_FILTER
    assert parsed.default.targets[0].queue == "Everyone"


def test_a_filter_without_expression_matches_every_task():
    parsed = routing({"filter_friendly_name": "All", "targets": [{"queue": "English"}]})

    step = locate(parsed, {"anything": 1}, age=0)

    assert step is not None
    assert (step.filter_name, step.target.queue) == ("All", "English")


# ---------------------------------------------------------------- locate


def test_filters_are_tried_top_to_bottom_and_the_first_match_wins():
    parsed = routing(
        flt("English", "language == 'en'", {"queue": "English"}),
        flt("Spanish", "language == 'es'", {"queue": "Spanish"}),
        flt("Anyone", "1==1", {"queue": "Everyone"}),
        default="Everyone",
    )

    found = {
        language: locate(parsed, {"language": language}, age=0)
        for language in ("en", "es", "fr")
    }

    assert {k: (s.filter_index, s.filter_name) for k, s in found.items() if s} == {
        "en": (0, "English"),
        "es": (1, "Spanish"),
        "fr": (2, "Anyone"),
    }


@pytest.mark.parametrize(
    ("age", "target_index", "queue", "ends_at_age"),
    [
        (0, 0, "Spanish", 10),
        (9.999, 0, "Spanish", 10),
        (10, 1, "English", 20),
        (19.5, 1, "English", 20),
        (20, 2, "Everyone", 30),
        (29.999, 2, "Everyone", 30),
    ],
)
def test_step_timeouts_add_up_on_the_tasks_age(age, target_index, queue, ends_at_age):
    step = locate(routing(THREE_STEPS), {"language": "es"}, age=age)

    assert step is not None
    assert (step.target_index, step.target.queue, step.ends_at_age) == (
        target_index,
        queue,
        ends_at_age,
    )


def test_the_step_carries_its_targets_priority():
    parsed = routing(THREE_STEPS)

    priorities = [
        locate(parsed, {"language": "es"}, age=age).target.priority  # type: ignore[union-attr]
        for age in (0, 10, 20)
    ]

    assert priorities == [None, 5, 10]


def test_when_the_last_step_times_out_the_workflow_times_out():
    parsed = routing(THREE_STEPS, default="Everyone")

    assert locate(parsed, {"language": "es"}, age=30) is None
    assert locate(parsed, {"language": "es"}, age=10_000) is None


def test_default_filter_is_not_a_timeout_fallback():
    parsed = routing(THREE_STEPS, default="Everyone")

    timed_out = locate(parsed, {"language": "es"}, age=31)
    unmatched = locate(parsed, {"language": "fr"}, age=31)

    assert timed_out is None
    assert unmatched is not None
    assert (unmatched.filter_index, unmatched.filter_name) == (None, DEFAULT_FILTER)
    assert unmatched.target.queue == "Everyone"


def test_a_task_matching_no_filter_and_no_default_has_no_step():
    assert locate(routing(THREE_STEPS), {"language": "fr"}, age=0) is None


def test_after_a_filters_last_step_the_next_matching_filter_is_tried():
    parsed = routing(
        THREE_STEPS,
        flt("English", "language == 'en'", {"queue": "English"}),
        flt(
            "Fallback",
            "language IN ['es', 'en']",
            {"queue": "English", "timeout": 5},
            {"queue": "Everyone"},
        ),
        default="English",
    )

    steps = [locate(parsed, {"language": "es"}, age=age) for age in (30, 34, 35, 99)]

    assert [(s.filter_index, s.target_index, s.ends_at_age) for s in steps if s] == [
        (2, 0, 35),
        (2, 0, 35),
        (2, 1, None),
        (2, 1, None),
    ]


def test_a_step_without_timeout_is_final_whatever_the_age():
    parsed = routing(
        flt(
            "Spanish",
            "1==1",
            {"queue": "Spanish", "timeout": 10},
            {"queue": "Everyone"},
        )
    )

    step = locate(parsed, {}, age=1_000_000)

    assert step is not None
    assert (step.target_index, step.ends_at_age) == (1, None)


def test_later_steps_are_never_reached_past_a_final_step():
    parsed = routing(
        flt("F", "1==1", {"queue": "Spanish"}, {"queue": "Everyone", "timeout": 5})
    )

    step = locate(parsed, {}, age=100)

    assert step is not None
    assert step.target_index == 0


def test_skipped_steps_are_passed_over_and_take_no_time():
    parsed = routing(THREE_STEPS)

    at_once = locate(parsed, {"language": "es"}, age=0, skipped=[[0, 0]])
    later = locate(parsed, {"language": "es"}, age=5, skipped=[[0, 0], [0, 1]])

    assert at_once is not None
    assert (at_once.target_index, at_once.ends_at_age) == (1, 10)
    assert later is not None
    assert (later.target_index, later.ends_at_age) == (2, 10)


@pytest.mark.parametrize("age", [0, 10, 1000])
def test_a_located_step_has_not_ended_at_the_tasks_age(age):
    """A step already over would never be left: its deadline stays in the past."""
    configuration = {
        "task_routing": {"default_filter": {"queue": "Everyone", "timeout": 10}}
    }
    try:
        parsed = parse_configuration(configuration, QUEUES)
    except ConfigurationError:
        return  # refusing a timeout on default_filter (TaskRouter has none) is fine
    step = locate(parsed, {}, age=age)

    assert step is None or step.ends_at_age is None or age < step.ends_at_age


def test_a_skipped_default_filter_leaves_no_step():
    parsed = routing(default="Everyone")

    assert locate(parsed, {}, age=0, skipped=[[None, 0]]) is None


# ---------------------------------------------------------------- workers


def candidate(
    name: str,
    load: int = 0,
    idle_since: int = 0,
    **attributes: Any,
) -> Candidate:
    """A worker unoccupied since T0 + `idle_since` seconds."""
    since = T0 + timedelta(seconds=idle_since)
    return Candidate(len(name), name, attributes, load, since)


def names(workers: list[Candidate]) -> list[str]:
    return [w.name for w in workers]


def test_order_by_desc_puts_the_highest_number_first():
    workers = [candidate("ann", level=1), candidate("bo", level=3.5)]
    workers += [candidate("cy", level=2)]

    assert names(order_workers(workers, "worker.level DESC")) == ["bo", "cy", "ann"]


def test_order_by_asc_puts_the_lowest_number_first_and_is_the_default():
    workers = [candidate("ann", level=3), candidate("bo", level=1)]
    workers += [candidate("cy", level=2)]

    assert names(order_workers(workers, "worker.level ASC")) == ["bo", "cy", "ann"]
    assert names(order_workers(workers, "worker.level")) == ["bo", "cy", "ann"]


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_a_worker_lacking_the_attribute_sorts_after_whatever_the_direction(
    direction,
):
    workers = [
        candidate("aaron"),
        candidate("bea", level="high"),
        candidate("cat", level=True),
        candidate("dan", level=1),
        candidate("eve", level=9),
    ]

    ordered = names(order_workers(workers, f"worker.level {direction}"))

    assert set(ordered[:2]) == {"dan", "eve"}
    assert ordered[2:] == ["aaron", "bea", "cat"]


def test_a_second_order_by_clause_breaks_ties_of_the_first():
    workers = [
        candidate("ann", level=2, years=5),
        candidate("bo", level=2, years=1),
        candidate("cy", level=1, years=0),
    ]

    ordered = order_workers(workers, "worker.level DESC, worker.years ASC")

    assert names(ordered) == ["bo", "ann", "cy"]


def test_order_by_reads_nested_attributes():
    workers = [
        candidate("ann", skills={"chat": 1}),
        candidate("bo", skills={"chat": 4}),
    ]

    assert names(order_workers(workers, "worker.skills.chat DESC")) == ["bo", "ann"]


def test_order_by_comes_before_load_and_idle_time():
    workers = [
        candidate("ann", load=0, idle_since=0, level=1),
        candidate("bo", load=1, idle_since=50, level=2),
    ]

    assert names(order_workers(workers, "worker.level DESC")) == ["bo", "ann"]


def test_ties_go_to_fewer_tasks_then_unoccupied_longest_then_name():
    workers = [
        candidate("Dora", load=1, idle_since=0),
        candidate("cy", load=0, idle_since=30),
        candidate("Bo", load=0, idle_since=10),
        candidate("al", load=0, idle_since=10),
    ]

    assert names(order_workers(workers)) == ["al", "Bo", "cy", "Dora"]


def test_equal_order_by_values_fall_back_to_the_default_tie_breaks():
    workers = [
        candidate("cy", load=0, idle_since=5, level=2),
        candidate("bo", load=1, idle_since=0, level=2),
        candidate("al", load=0, idle_since=5, level=2),
    ]

    assert names(order_workers(workers, "worker.level DESC")) == ["al", "cy", "bo"]


@pytest.mark.parametrize(
    ("source", "clauses"),
    [
        ("worker.level DESC", [("level", True)]),
        ("worker.level desc, worker.age", [("level", True), ("age", False)]),
        ("level ASC", [("level", False)]),
        ("worker.skills.chat DESC", [("skills.chat", True)]),
    ],
)
def test_order_by_clauses_are_read_as_attribute_and_direction(source, clauses):
    assert order_clauses(source) == clauses


@pytest.mark.parametrize(
    "source", ["worker.level DOWN", "worker.level DESC extra", "worker.level,"]
)
def test_an_unreadable_order_by_raises(source):
    with pytest.raises(ValueError, match="order_by"):
        order_clauses(source)


# ---------------------------------------------------------------- tasks


@dataclass
class Waiting:
    pk: int
    routing_priority: int
    created_at: datetime


def waiting(pk: int, priority: int, at: int) -> Waiting:
    return Waiting(pk, priority, T0 + timedelta(seconds=at))


TASKS = [
    waiting(1, 0, at=0),
    waiting(2, 0, at=5),
    waiting(3, 5, at=9),
    waiting(4, 0, at=5),
    waiting(5, 5, at=1),
]


@pytest.mark.parametrize(
    ("lifo", "expected"),
    [(False, [5, 3, 1, 2, 4]), (True, [3, 5, 2, 4, 1])],
    ids=["FIFO", "LIFO"],
)
def test_tasks_go_by_priority_then_age_by_queue_order_then_id(lifo, expected):
    ordered = sorted(TASKS, key=task_sort_key(lifo))

    assert [t.pk for t in ordered] == expected
