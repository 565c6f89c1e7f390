"""`manage.py routesim` as a supervisor runs it: a subprocess, a scenario file,
JSON lines on stdout, status 2 and a message naming the place for a bad scenario.

Every run starts a Django process (about a second), so they all happen once, in a
thread pool, in a module-scoped fixture; the tests read the results.
"""

import copy
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "routing"
ESCALATION = json.loads((FIXTURES / "escalation.scenario.json").read_text())


def base(**parts: Any) -> dict[str, Any]:
    """A scenario with Offline/Available, chat and sms, and the given parts."""
    return {
        "activities": [
            {"name": "Offline", "available": False},
            {"name": "Available", "available": True},
        ],
        "default_activity": "Offline",
        "timeout_activity": "Offline",
        "task_channels": ["chat", "sms"],
        "until": 100,
        **parts,
    }


def by_attribute(key: str, routes: dict[str, str]) -> dict[str, Any]:
    """A workflow sending tasks whose `key` is each value to that queue."""
    filters = [
        {
            "filter_friendly_name": value,
            "expression": f"{key} == '{value}'",
            "targets": [{"queue": queue}],
        }
        for value, queue in routes.items()
    ]
    return {"name": "Route", "configuration": {"task_routing": {"filters": filters}}}


def worker(name: str, answer: dict[str, Any], **attributes: Any) -> dict[str, Any]:
    return {
        "name": name,
        "attributes": attributes,
        "activity": "Available",
        "capacity": {"chat": 1},
        "answer": answer,
    }


def create(
    at: float, task: str, workflow: str = "Route", channel: str = "chat", **body: Any
) -> dict[str, Any]:
    return {
        "at": at,
        "create_task": {"id": task, "workflow": workflow, "channel": channel, **body},
    }


# Three of four workers offered at once; ana accepts first, ben's later accept
# comes too late. eve rejects, and fay is offered instead.
OFFERS = base(
    queues=[
        {"name": "Trio", "target_workers": "team == 'trio'", "max_reserved_workers": 3},
        {"name": "Pair", "target_workers": "team == 'pair'"},
    ],
    workflows=[by_attribute("team", {"trio": "Trio", "pair": "Pair"})],
    workers=[
        worker("ana", {"action": "accept", "after": 2}, team="trio"),
        worker("ben", {"action": "accept", "after": 5}, team="trio"),
        worker("cy", {"action": "ignore"}, team="trio"),
        worker("dan", {"action": "accept"}, team="trio"),
        worker("eve", {"action": "reject", "after": 1}, team="pair"),
        worker("fay", {"action": "accept", "after": 1}, team="pair"),
    ],
    timeline=[
        create(0, "t1", attributes={"team": "trio"}),
        create(10, "t2", attributes={"team": "pair"}),
    ],
)

# olga (FIFO queue) and nina (LIFO queue) come online at 10 to four tasks each,
# the third of higher priority; each completes a task a second after accepting.
LANES = [("old", "o"), ("new", "n")]
ORDER = base(
    queues=[
        {"name": "Oldest", "target_workers": "lane == 'old'", "task_order": "FIFO"},
        {"name": "Newest", "target_workers": "lane == 'new'", "task_order": "LIFO"},
    ],
    workflows=[by_attribute("lane", {"old": "Oldest", "new": "Newest"})],
    workers=[
        worker(name, {"action": "accept", "complete_after": 1}, lane=lane)
        | {"activity": "Offline"}
        for name, lane in (("olga", "old"), ("nina", "new"))
    ],
    timeline=[
        create(at, f"{prefix}{at + 1}", attributes={"lane": lane}, priority=priority)
        for at, priority in ((0, 0), (1, 0), (2, 5), (3, 0))
        for lane, prefix in LANES
    ]
    + [
        {"at": 10, "set_activity": {"worker": name, "activity": "Available"}}
        for name in ("olga", "nina")
    ],
)

# ana holds two chats at once; the third waits for one to end. Nobody takes sms,
# so that task outlives its TTL.
CAPACITY = base(
    queues=[{"name": "Everyone"}],
    workflows=[
        {
            "name": "Support",
            "configuration": {
                "task_routing": {"default_filter": {"queue": "Everyone"}}
            },
        }
    ],
    workers=[
        worker("ana", {"action": "accept", "after": 1, "complete_after": 20})
        | {"capacity": {"chat": 2}}
    ],
    timeline=[create(0, f"t{n}", "Support") for n in (1, 2, 3)]
    + [create(5, "s1", "Support", channel="sms", timeout=10)],
)


def broken(change) -> dict[str, Any]:
    """The escalation scenario, changed in place by `change`."""
    scenario = copy.deepcopy(ESCALATION)
    change(scenario)
    return scenario


def in_escalation_timeline(entry: dict[str, Any]):
    return broken(lambda s: s["timeline"].append({"at": 5, **entry}))


MALFORMED = {
    "bad JSON": ('{"activities": [\n  {"name": "Offline",}\n]}', "line 2 column"),
    "unknown queue in a workflow target": (
        broken(
            lambda s: s["workflows"][0]["configuration"]["task_routing"]["filters"][0][
                "targets"
            ][1].update(queue="Nowhere")
        ),
        "workflows[0].configuration.task_routing.filters[0].targets[1].queue: "
        "unknown queue 'Nowhere'",
    ),
    "unknown worker in the timeline": (
        in_escalation_timeline(
            {"set_activity": {"worker": "zoe", "activity": "Offline"}}
        ),
        "timeline[1].set_activity.worker: unknown worker 'zoe'",
    ),
    "bad queue expression": (
        broken(lambda s: s["queues"][0].update(target_workers="languages HAS")),
        "queues[0].target_workers: ",
    ),
    "unknown task channel in the timeline": (
        in_escalation_timeline(
            {"set_capacity": {"worker": "ana", "channel": "fax", "capacity": 1}}
        ),
        "timeline[1].set_capacity.channel",
    ),
    "update without attributes": (
        in_escalation_timeline({"update_task": {"task": "t1"}}),
        "timeline[1].update_task.attributes",
    ),
    "two workers of one name": (
        broken(lambda s: s["workers"].append({"name": "ana"})),
        "workers[2]",
    ),
}

RUNS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "escalation": (FIXTURES / "escalation.scenario.json", ()),
    "offers": (OFFERS, ()),
    "order": (ORDER, ()),
    "order --summary": (ORDER, ("--summary",)),
    "capacity": (CAPACITY, ("--summary",)),
    **{name: (scenario, ()) for name, (scenario, _) in MALFORMED.items()},
}


def routesim(path: Path, *flags: str) -> subprocess.CompletedProcess[bytes]:
    env = {
        **os.environ,
        "DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
    }
    return subprocess.run(
        [sys.executable, "manage.py", "routesim", str(path), *flags],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess[bytes]]:
    folder = tmp_path_factory.mktemp("routesim")
    jobs = {}
    for index, (name, (scenario, flags)) in enumerate(RUNS.items()):
        path = scenario
        if not isinstance(scenario, Path):
            path = folder / f"scenario-{index}.json"
            text = scenario if isinstance(scenario, str) else json.dumps(scenario)
            path.write_text(text, encoding="utf-8")
        jobs[name] = (path, flags)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(routesim, p, *f) for name, (p, f) in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


def tail(run: subprocess.CompletedProcess[bytes]) -> str:
    """The end of stderr: the message, or the last frames of a traceback."""
    return "\n".join(run.stderr.decode().splitlines()[-3:])


def lines(run: subprocess.CompletedProcess[bytes]) -> list[dict[str, Any]]:
    assert run.returncode == 0, tail(run)
    return [json.loads(line) for line in run.stdout.decode().splitlines()]


def assert_subsequence(actual: list[dict], expected: list[dict]) -> None:
    """Each expected line appears, in order, as a line holding those fields."""
    position = 0
    for wanted in expected:
        while position < len(actual) and not wanted.items() <= actual[position].items():
            position += 1
        assert position < len(actual), f"missing, or out of order: {wanted}"
        position += 1


def line(t: float, type: str, **fields: Any) -> dict[str, Any]:
    return {"t": t, "type": type, **fields}


def offered(run, worker: str) -> list[str]:
    """The tasks offered to `worker`, in order."""
    return [
        entry["task"]
        for entry in lines(run)
        if entry["type"] == "reservation.created" and entry["worker"] == worker
    ]


# ---------------------------------------------------------------- escalation


def test_escalation_prints_every_expected_event_in_order(runs):
    expected_text = (FIXTURES / "escalation.expected.jsonl").read_text()
    expected = [json.loads(row) for row in expected_text.splitlines() if row]

    assert_subsequence(lines(runs["escalation"]), expected)


def test_every_line_is_a_json_object_with_time_and_taskrouter_type(runs):
    for entry in lines(runs["escalation"]) + lines(runs["offers"]):
        assert isinstance(entry["t"], int | float)
        assert entry["type"].split(".")[0] in {
            "task",
            "task-queue",
            "workflow",
            "reservation",
            "worker",
        }


def test_the_same_scenario_prints_the_same_bytes(runs):
    first, second = runs["order"], runs["order --summary"]
    events = b"".join(
        row
        for row in second.stdout.splitlines(keepends=True)
        if b'"summary"' not in row
    )

    assert first.returncode == second.returncode == 0
    assert len(first.stdout.splitlines()) > 50
    assert events == first.stdout


def test_summary_adds_a_line_per_queue_after_the_events(runs):
    plain, summary = runs["order"].stdout, runs["order --summary"].stdout

    assert summary.startswith(plain)
    assert [json.loads(row) for row in summary[len(plain) :].splitlines()] == [
        {"type": "summary", "queue": queue, "tasks": 4, "accepted": 4, "canceled": 0}
        for queue in ("Oldest", "Newest")
    ]


# ---------------------------------------------------------------- malformed


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_scenario_exits_2_naming_the_place(runs, case):
    run = runs[case]
    message = run.stderr.decode()

    assert (run.returncode, run.stdout) == (2, b""), tail(run)
    assert MALFORMED[case][1] in message
    assert "Traceback" not in message


# ---------------------------------------------------------------- our scenarios


def test_several_offers_at_once_and_the_first_accept_rescinds_the_others(runs):
    assert_subsequence(
        lines(runs["offers"]),
        [
            line(0, "reservation.created", task="t1", worker="ana", reservation="r1"),
            line(0, "reservation.created", task="t1", worker="ben", reservation="r2"),
            line(0, "reservation.created", task="t1", worker="cy", reservation="r3"),
            line(2, "reservation.accepted", task="t1", worker="ana", reservation="r1"),
            line(2, "reservation.rescinded", task="t1", worker="ben", reservation="r2"),
            line(2, "reservation.rescinded", task="t1", worker="cy", reservation="r3"),
        ],
    )
    t1 = [e for e in lines(runs["offers"]) if e.get("task") == "t1"]
    assert [e["type"] for e in t1].count("reservation.accepted") == 1
    assert offered(runs["offers"], "dan") == []
    assert "reservation.timeout" not in {e["type"] for e in t1}


def test_a_rejected_offer_goes_to_the_next_worker_and_never_back(runs):
    assert_subsequence(
        lines(runs["offers"]),
        [
            line(10, "reservation.created", task="t2", worker="eve", reservation="r4"),
            line(11, "reservation.rejected", task="t2", worker="eve", reservation="r4"),
            line(11, "reservation.created", task="t2", worker="fay", reservation="r5"),
            line(12, "reservation.accepted", task="t2", worker="fay", reservation="r5"),
        ],
    )
    assert offered(runs["offers"], "eve") == ["t2"]


@pytest.mark.parametrize(
    ("worker", "expected"),
    [("olga", ["o3", "o1", "o2", "o4"]), ("nina", ["n3", "n4", "n2", "n1"])],
    ids=["FIFO", "LIFO"],
)
def test_priority_first_then_the_queues_order(runs, worker, expected):
    assert offered(runs["order"], worker) == expected
    reservations = [
        e
        for e in lines(runs["order"])
        if e["type"] == "reservation.created" and e["worker"] == worker
    ]
    assert [e["t"] for e in reservations] == [10, 11, 12, 13]


def test_a_worker_of_capacity_two_holds_two_tasks_and_the_third_waits(runs):
    events = lines(runs["capacity"])

    assert_subsequence(
        events,
        [
            line(0, "reservation.created", task="t1", worker="ana", reservation="r1"),
            line(0, "reservation.created", task="t2", worker="ana", reservation="r2"),
            line(1, "reservation.accepted", task="t1", reservation="r1"),
            line(1, "reservation.accepted", task="t2", reservation="r2"),
            line(21, "task.completed", task="t1", worker="ana"),
            line(21, "reservation.created", task="t3", worker="ana", reservation="r3"),
            line(22, "reservation.accepted", task="t3", reservation="r3"),
        ],
    )
    assert offered(runs["capacity"], "ana") == ["t1", "t2", "t3"]


def test_a_task_nobody_takes_is_canceled_when_its_ttl_runs_out(runs):
    events = [e for e in lines(runs["capacity"]) if e.get("task") == "s1"]

    assert events[-1] == line(
        15, "task.canceled", task="s1", reason="Task TTL Exceeded"
    )
    assert "reservation.created" not in {e["type"] for e in events}


def test_the_summary_counts_accepted_and_canceled_tasks_per_queue(runs):
    assert lines(runs["capacity"])[-1] == {
        "type": "summary",
        "queue": "Everyone",
        "tasks": 4,
        "accepted": 3,
        "canceled": 1,
    }
