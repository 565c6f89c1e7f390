from django.core.management.base import BaseCommand, CommandError

from bots import messaging


class Command(BaseCommand):
    help = "Cancel a scheduled message before it is sent."

    def add_arguments(self, parser) -> None:
        parser.add_argument("message_id", type=int)

    def handle(self, *args, **options) -> None:
        try:
            messaging.cancel(message_id=options["message_id"])
        except messaging.NotCancellable as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"message {options['message_id']} canceled")
