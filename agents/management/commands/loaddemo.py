from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from agents.demo import load_demo_console
from bots.demo import load_demo


class Command(BaseCommand):
    help = (
        "Create or refresh the demo data: senders, the tutorial flow, queues and "
        "workers, users ana/ben/sam, templates, canned responses. DEBUG only."
    )

    def handle(self, *args, **options) -> None:
        try:
            done = load_demo() + load_demo_console()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        for line in done:
            self.stdout.write(line)
