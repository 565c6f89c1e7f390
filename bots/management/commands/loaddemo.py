from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from bots.demo import load_demo


class Command(BaseCommand):
    help = (
        "Create or refresh the demo data (senders, users ana/ben/sam, templates). "
        "DEBUG only."
    )

    def handle(self, *args, **options) -> None:
        try:
            done = load_demo()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        for line in done:
            self.stdout.write(line)
