import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from routing.importing import ImportProblems, import_taskrouter, parse_mapping


class Command(BaseCommand):
    help = (
        "Import a TaskRouter setup exported from Twilio (activities, task channels, "
        "queues, workflows, workers, workspace) from JSON. Rows are matched by sid, "
        "so importing again updates them. Workflow queues named by WQ... sid map to "
        "the export's queues, or with --map WQ...=NAME to local ones."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="the TaskRouter export (.json)")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="WQ...=NAME",
            help="map a queue id a workflow names to a local queue",
        )

    def handle(self, *args, **options) -> None:
        path = Path(options["file"])
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            mapping = parse_mapping(options["map"])
        except (OSError, ValueError) as exc:
            raise CommandError(f"{path}: {exc}") from exc
        try:
            summary = import_taskrouter(data=data, mapping=mapping)
        except ImportProblems as exc:
            for problem in exc.problems:
                self.stderr.write(problem)
            raise CommandError(
                f"{path}: {len(exc.problems)} problem(s); nothing stored"
            ) from exc
        for line in summary.lines():
            self.stdout.write(line)
