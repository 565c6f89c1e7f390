import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from routing.simulation import ScenarioError, Simulation, validate
from routing.throwaway import use_throwaway_database


class Command(BaseCommand):
    help = (
        "Replay a routing scenario on a virtual clock, through the routing engine, "
        "in a throwaway database; print TaskRouter events as JSON lines."
    )
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser) -> None:
        parser.add_argument("scenario", help="the scenario (.json)")
        parser.add_argument(
            "--summary", action="store_true", help="add a summary line per queue"
        )

    def handle(self, *args, **options) -> None:
        path = Path(options["scenario"])
        try:
            scenario = json.loads(path.read_text(encoding="utf-8"))
            validate(scenario)
        except (OSError, ValueError) as exc:
            raise CommandError(f"{path}: {exc}", returncode=2) from exc
        use_throwaway_database()
        lines: list[dict[str, Any]] = []

        def write(line: dict[str, Any]) -> None:
            lines.append(line)
            self.stdout.write(json.dumps(line, ensure_ascii=False))

        with transaction.atomic():
            try:
                Simulation(scenario, write).run()
            except ScenarioError as exc:
                raise CommandError(f"{path}: {exc}", returncode=2) from exc
            if options["summary"]:
                for summary in summarize(lines, scenario):
                    self.stdout.write(json.dumps(summary, ensure_ascii=False))
            transaction.set_rollback(True)


def summarize(lines: list[dict[str, Any]], scenario: dict[str, Any]) -> list[dict]:
    """Per queue: tasks that entered it, were accepted there, and were canceled."""
    summaries = []
    for queue in scenario.get("queues", []):
        name = queue["name"]
        tasks = {
            line["task"]
            for line in lines
            if line.get("queue") == name and "task" in line
        }
        placed: dict[str, str] = {}
        accepted = canceled = 0
        for line in lines:
            if line["type"] == "workflow.target-matched":
                placed[line["task"]] = line["queue"]
            elif (
                line["type"] == "reservation.accepted"
                and placed.get(line["task"]) == name
            ):
                accepted += 1
            elif line["type"] == "task.canceled" and placed.get(line["task"]) == name:
                canceled += 1
        summaries.append(
            {
                "type": "summary",
                "queue": name,
                "tasks": len(tasks),
                "accepted": accepted,
                "canceled": canceled,
            }
        )
    return summaries
