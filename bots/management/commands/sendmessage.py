from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from bots import messaging


class Command(BaseCommand):
    help = (
        "Send or schedule a message to a customer, e.g. "
        "sendmessage --from whatsapp:+14155238886 --to whatsapp:+15005550006 "
        "--body 'Hello'"
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--from", dest="sender", required=True, help="one of our senders"
        )
        parser.add_argument("--to", required=True, help="the customer's address")
        parser.add_argument("--body", default="")
        parser.add_argument(
            "--media-url", action="append", default=[], dest="media_urls"
        )
        parser.add_argument("--template", help="template name, e.g. dentalink_reminder")
        parser.add_argument(
            "--var",
            action="append",
            default=[],
            help="template variable, e.g. --var 1=Ana",
        )
        parser.add_argument(
            "--send-at", help="ISO 8601 time with zone, 15 minutes to 35 days ahead"
        )

    def handle(self, *args, **options) -> None:
        variables = {}
        for item in options["var"]:
            key, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"--var takes NAME=VALUE, not {item!r}")
            variables[key.strip()] = value
        send_at = None
        if options["send_at"]:
            try:
                send_at = datetime.fromisoformat(
                    options["send_at"].replace("Z", "+00:00")
                )
            except ValueError:
                raise CommandError(
                    f"--send-at is not an ISO 8601 time: {options['send_at']}"
                ) from None
        try:
            message = messaging.send(
                sender=options["sender"],
                to=options["to"],
                body=options["body"],
                media_urls=options["media_urls"],
                template=options["template"],
                variables=variables,
                send_at=send_at,
            )
        except messaging.MessagingError as exc:
            raise CommandError(str(exc)) from exc
        when = f"scheduled for {send_at.isoformat()}" if send_at else "queued"
        self.stdout.write(f"message {message.pk} {when}")
