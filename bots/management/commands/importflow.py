import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from bots.flows.definition import InvalidFlow
from bots.flows.importing import import_flow, parse_mapping


class Command(BaseCommand):
    help = (
        "Validate a Studio flow definition (JSON) and store it as the flow's next "
        "published revision. Twilio ids are mapped with --map WW...=Support."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="the exported flow definition (.json)")
        parser.add_argument("--name", help="the flow's name (default: the file's name)")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="TWILIO_ID=NAME",
            help="map a workflow, task channel, subflow or function id to a local name",
        )
        parser.add_argument(
            "--draft", action="store_true", help="store without publishing"
        )

    def handle(self, *args, **options) -> None:
        path = Path(options["file"])
        try:
            definition = json.loads(path.read_text(encoding="utf-8"))
            mapping = parse_mapping(options["map"])
        except (OSError, ValueError) as exc:
            raise CommandError(f"{path}: {exc}") from exc
        name = options["name"] or path.stem
        try:
            revision = import_flow(
                definition=definition,
                name=name,
                mapping=mapping,
                publish=not options["draft"],
            )
        except InvalidFlow as exc:
            for problem in exc.problems:
                self.stderr.write(problem)
            raise CommandError(
                f"{path}: {len(exc.problems)} problem(s); nothing stored"
            ) from exc
        state = "draft" if options["draft"] else "published"
        self.stdout.write(
            f"flow {revision.flow.name} revision {revision.number} {state}"
        )
