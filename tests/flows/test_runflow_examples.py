"""`manage.py runflow` runs Studio flows offline, as the spec's examples say.

Each run is a subprocess: runflow swaps its process's database for a throwaway
one, which must not happen inside the test session. Runs point DATABASE_URL at a
file under a temporary folder, so a leak could only ever reach that file.

Starting Django costs about a second, so the runs this module needs are listed in
RUNS and started together, a few at a time, when the module's first test asks for
one; each test then reads its run's output.
"""

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.flows import studio

REPO = Path(__file__).resolve().parents[2]
CASES = json.loads(
    (REPO / "tests/fixtures/flows/appointments.cases.json").read_text("utf-8")
)
APPOINTMENTS = REPO / "bots/demo_flows" / CASES["flow"]
CONTACT = "whatsapp:+573001112233"
CHANNEL = "whatsapp:+14155238886"
CHILD_SID = "FW00000000000000000000000000000009"

# The flows and stub files the runs use, written to a temporary folder.
FILES: dict[str, Any] = {
    "broken.json": studio.flow(
        studio.trigger("split_1"),
        studio.split(
            "split_1",
            "{{trigger.message.Body}}",
            ("equal_to", "hola", "hello"),
            ("equals", "chao", "hello"),
            no_match="nowhere",
        ),
        studio.send("hello", "Hola"),
    ),
    "lookup.json": studio.flow(
        studio.trigger("lookup"),
        studio.http(
            "lookup",
            "https://api.example.com/customers/{{trigger.message.Body}}",
            success="found",
            failed="not_found",
        ),
        studio.send(
            "found", "{{widgets.lookup.status_code}} {{widgets.lookup.parsed.name}}"
        ),
        studio.send(
            "not_found", "failed [{{widgets.lookup.body}}{{widgets.lookup.parsed}}]"
        ),
    ),
    "stubs.json": {
        "GET https://api.example.com/customers/ana": {
            "status": 200,
            "json": {"name": "Ana"},
        },
        "GET https://api.example.com/customers/boom": {
            "status": 500,
            "body": "down for maintenance",
        },
    },
    "unported.json": studio.flow(
        studio.trigger("lookup"),
        studio.function(
            "lookup",
            "https://legacy-1234.twil.io/not-ported-yet",
            success="worked",
            fail="failed",
            documento="{{trigger.message.Body}}",
        ),
        studio.send("worked", "worked"),
        studio.send("failed", "the function failed"),
    ),
    "double.json": studio.flow(
        studio.trigger(parent="compute"),
        studio.set_variables(
            "compute",
            {
                "key": "doubled",
                "value": "{{trigger.parent.parameters.x}}"
                "{{trigger.parent.parameters.x}}",
            },
        ),
    ),
    "parent.json": studio.flow(
        studio.trigger("child"),
        studio.subflow(
            "child",
            CHILD_SID,
            completed="report",
            failed="broken",
            x="{{trigger.message.Body}}",
        ),
        studio.send(
            "report",
            "widget [{{widgets.child.doubled}}] "
            "parent variable [{{flow.variables.doubled}}]",
        ),
        studio.send("broken", "the subflow failed"),
    ),
    "hello.json": studio.flow(studio.trigger("hello"), studio.send("hello", "Hi")),
    "not-json.json": "{not json",
}

# name: (flow file, what the customer says, more options); "{dir}" is the folder.
RUNS: dict[str, tuple[str, list[str], list[str]]] = {
    **{
        f"case: {case['name']}": (str(APPOINTMENTS), case["say"], [])
        for case in CASES["cases"]
    },
    "cancel with steps": (
        str(APPOINTMENTS),
        ["hola", "1", "1032456789"],
        ["--steps", "--strict"],
    ),
    "no answer with steps": (str(APPOINTMENTS), ["hola", "@timeout"], ["--steps"]),
    "broken": ("broken.json", ["hola"], []),
    "not json": ("not-json.json", ["hola"], []),
    "stubbed lookups": (
        "lookup.json",
        ["ana", "boom", "nobody"],
        ["--http-stub", "{dir}/stubs.json", "--steps"],
    ),
    "unstubbed lookup": ("lookup.json", ["ana"], []),
    "unported function": ("unported.json", ["123"], []),
    "unported function, strict": ("unported.json", ["123"], ["--strict"]),
    "subflow": (
        "parent.json",
        ["ab"],
        ["--subflow", f"{CHILD_SID}={{dir}}/double.json"],
    ),
    "subflow without its child": ("parent.json", ["ab"], []),
    "timeout with nothing waiting": ("hello.json", ["hola", "@timeout"], []),
}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def text_lines(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.strip()]

    @property
    def lines(self) -> list[dict[str, Any]]:
        """The printed JSON objects (fails the test on a line that is not JSON)."""
        return [json.loads(line) for line in self.text_lines]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["type"] == kind]

    def bodies(self) -> list[str]:
        return [line["body"] for line in self.of_type("message")]


def manage(*args: str, database: Path) -> Run:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={
            **os.environ,
            "DEBUG": "1",
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DATABASE_URL": f"sqlite:///{database}",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def runflow_args(
    folder: Path, file: str, say: list[str], extra: list[str]
) -> list[str]:
    args = ["runflow", str(folder / file), "--from", CONTACT, "--to", CHANNEL]
    for text in say:
        args += ["--say", text]
    return args + [option.replace("{dir}", str(folder)) for option in extra]


def migrate_then_run(database: Path, args: list[str]) -> tuple[Run, Run]:
    return manage("migrate", "--verbosity", "0", database=database), manage(
        *args, database=database
    )


@dataclass
class Workspace:
    folder: Path
    untouched: Path  # the database every run in RUNS is pointed at
    migrated: Path  # a migrated database that one run is pointed at
    futures: dict[str, Future]

    def __getitem__(self, name: str) -> Run:
        return self.futures[name].result()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Iterator[Workspace]:
    folder = tmp_path_factory.mktemp("runflow")
    for name, content in FILES.items():
        text = content if isinstance(content, str) else json.dumps(content)
        (folder / name).write_text(text, encoding="utf-8")
    untouched, migrated = folder / "untouched.sqlite3", folder / "migrated.sqlite3"
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures: dict[str, Future] = {
            name: pool.submit(manage, *runflow_args(folder, *spec), database=untouched)
            for name, spec in RUNS.items()
        }
        futures["migrated"] = pool.submit(
            migrate_then_run,
            migrated,
            runflow_args(folder, str(APPOINTMENTS), ["hola", "2"], []),
        )
        yield Workspace(folder, untouched, migrated, futures)


def expectation_met(expected: dict[str, Any], line: dict[str, Any]) -> bool:
    if line["type"] != expected["type"]:
        return False
    if expected["type"] == "message":
        return expected["body_contains"] in line["body"]
    if expected["type"] == "handoff":
        attributes = line["attributes"]
        return all(attributes.get(k) == v for k, v in expected["attributes"].items())
    return True


def unmet_expectations(
    expected: list[dict[str, Any]], lines: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The expectations left over when matching `lines` in order (empty: all met)."""
    remaining = list(expected)
    for line in lines:
        if remaining and expectation_met(remaining[0], line):
            remaining.pop(0)
    return remaining


def conversations(run: Run) -> list[list[dict[str, Any]]]:
    """The output split after each `end` line: one list per execution."""
    chunks: list[list[dict[str, Any]]] = [[]]
    for line in run.lines:
        chunks[-1].append(line)
        if line["type"] == "end":
            chunks.append([])
    return [chunk for chunk in chunks if chunk]


# The matcher itself, so that a passing case means something.


@pytest.mark.parametrize(
    ("expected", "met"),
    [
        ([{"type": "message", "body_contains": "a"}, {"type": "end"}], True),
        ([{"type": "end"}, {"type": "message", "body_contains": "a"}], False),
        ([{"type": "message", "body_contains": "z"}], False),
        ([{"type": "handoff", "attributes": {"reason": "x"}}], True),
        ([{"type": "handoff", "attributes": {"reason": "y"}}], False),
    ],
)
def test_expectations_match_as_an_ordered_subsequence(expected, met):
    lines = [
        {"type": "message", "body": "abc"},
        {"type": "handoff", "attributes": {"reason": "x", "from": "me"}},
        {"type": "end", "reason": "flow end"},
    ]

    assert (unmet_expectations(expected, lines) == []) is met


# The spec's examples.


@pytest.mark.parametrize("case", CASES["cases"], ids=lambda case: case["name"])
def test_every_example_case_prints_its_expectations_in_order(runs, case):
    run = runs[f"case: {case['name']}"]

    assert run.returncode == 0, run.stderr
    assert run.of_type("warning") == []
    assert unmet_expectations(case["expect"], run.lines) == [], run.stdout


def test_messages_go_to_the_contact_and_a_wait_names_its_timeout(runs):
    run = runs["case: no answer"]

    assert {line["to"] for line in run.of_type("message")} == {CONTACT}
    assert run.of_type("wait") == [
        {"type": "wait", "widget": "welcome", "timeout": 3600}
    ]


def test_a_handoff_line_names_the_local_workflow_and_channel(runs):
    run = runs["case: ask for an agent"]

    [handoff] = run.of_type("handoff")
    assert handoff["widget"] == "to_agent"
    assert (handoff["workflow"], handoff["channel"]) == ("Support", "chat")
    assert handoff["priority"] == 0
    assert handoff["attributes"]["channelType"] == "whatsapp"
    assert run.lines[-1]["type"] == "end"


# --steps


def test_steps_are_printed_only_with_the_steps_flag(runs):
    plain = runs["case: cancel an appointment"]
    stepped = runs["cancel with steps"]

    assert plain.of_type("step") == []
    assert [line for line in stepped.lines if line["type"] != "step"] == plain.lines
    steps = stepped.of_type("step")
    assert {tuple(line) for line in steps} == {("type", "widget", "event", "next")}
    assert [(line["widget"], line["event"], line["next"]) for line in steps] == [
        ("Trigger", "incomingMessage", "welcome"),
        ("welcome", "incomingMessage", "route_choice"),
        ("route_choice", "match", "ask_document"),
        ("ask_document", "incomingMessage", "remember_document"),
        ("remember_document", "next", "cancel"),
        ("cancel", "success", "cancelled"),
        ("cancelled", "sent", ""),
    ]


# Validation.


def test_a_flow_that_fails_validation_exits_2_with_a_line_per_problem(runs):
    run = runs["broken"]

    assert run.returncode == 2
    assert sorted(run.text_lines) == [
        'state "split_1": condition 2: unknown operator "equals"',
        'state "split_1": transition "noMatch": next "nowhere" is not a state',
    ]


def test_a_file_that_is_not_json_is_an_error_naming_it(runs):
    run = runs["not json"]

    assert run.returncode != 0
    assert "not-json.json" in run.stderr


# --http-stub


@pytest.mark.parametrize(
    ("number", "event", "body"),
    [(0, "success", "200 Ana"), (1, "failed", "failed []"), (2, "failed", "failed []")],
    ids=["stubbed JSON", "stubbed 500", "no stub"],
)
def test_http_stubs_answer_make_http_request(runs, number, event, body):
    run = runs["stubbed lookups"]
    assert run.returncode == 0, run.stderr
    conversation = conversations(run)[number]

    [step] = [line for line in conversation if line.get("widget") == "lookup"]
    assert step["event"] == event
    assert [line["body"] for line in conversation if line["type"] == "message"] == [
        body
    ]


def test_without_stubs_a_request_fails_rather_than_reaching_the_network(runs):
    run = runs["unstubbed lookup"]

    assert run.returncode == 0, run.stderr
    assert run.bodies() == ["failed []"]


# Functions.


def test_an_unregistered_function_warns_and_takes_fail(runs):
    run = runs["unported function"]

    assert run.returncode == 0, run.stderr
    [warning] = run.of_type("warning")
    assert warning["widget"] == "lookup"
    assert "not-ported-yet" in warning["message"]
    assert run.bodies() == ["the function failed"]
    assert run.lines.index(warning) < run.lines.index(run.of_type("message")[0])


def test_strict_makes_an_unregistered_function_a_validation_error(runs):
    run = runs["unported function, strict"]

    assert run.returncode == 2
    [problem] = run.text_lines
    assert problem.startswith('state "lookup": ')
    assert "not-ported-yet" in problem


def test_a_registered_function_passes_strict_and_runs_for_real(runs):
    run = runs["cancel with steps"]

    assert run.returncode == 0, run.stderr
    assert run.of_type("warning") == []
    assert "2026-12-03 10:30 con Dra. Ramírez" in run.bodies()[-1]


# --subflow


def test_a_subflow_reads_parent_parameters_and_its_variables_come_back(runs):
    run = runs["subflow"]

    assert run.returncode == 0, run.stderr
    assert run.bodies() == ["widget [abab] parent variable []"]
    assert run.lines[-1] == {"type": "end", "reason": "flow end"}


def test_a_subflow_id_with_no_child_file_is_a_validation_error(runs):
    run = runs["subflow without its child"]

    assert run.returncode == 2
    [problem] = run.text_lines
    assert problem.startswith('state "child": ')
    assert CHILD_SID in problem


# @timeout


def test_at_timeout_takes_the_waiting_widgets_timeout_transition(runs):
    run = runs["no answer with steps"]

    assert run.returncode == 0, run.stderr
    assert {
        "type": "step",
        "widget": "welcome",
        "event": "timeout",
        "next": "goodbye",
    } in run.lines
    assert "inactividad" in run.bodies()[-1]


def test_at_timeout_with_nothing_waiting_is_a_warning(runs):
    run = runs["timeout with nothing waiting"]

    assert run.returncode == 0, run.stderr
    assert [line["type"] for line in run.lines] == ["message", "end", "warning"]


# The real database.


def test_runflow_leaves_a_migrated_database_untouched(runs):
    migrated, run = runs.futures["migrated"].result()
    assert migrated.returncode == 0, migrated.stderr

    assert run.returncode == 0, run.stderr
    assert run.of_type("handoff")
    with sqlite3.connect(runs.migrated) as connection:
        counts = {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in (
                "bots_message",
                "bots_flow",
                "bots_execution",
                "bots_sender",
                "routing_task",
                "routing_workflow",
            )
        }
    assert counts == dict.fromkeys(counts, 0)


def test_runflow_does_not_create_the_database_it_was_pointed_at(runs):
    for name in RUNS:
        runs[name]  # every run has finished

    assert not runs.untouched.exists()
