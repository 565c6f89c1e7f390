import json

from django.core.management.base import BaseCommand, CommandError

from bots.flows.importing import export_flow


class Command(BaseCommand):
    help = "Print a flow's Studio definition (its published revision) as JSON."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument("--revision", type=int, help="a revision number")

    def handle(self, *args, **options) -> None:
        try:
            definition = export_flow(name=options["name"], number=options["revision"])
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(definition, indent=2, ensure_ascii=False))
