"""Start-up checks for settings that would silently lose messages in production."""

from django.conf import settings
from django.core.checks import Tags, Warning, register

SIMULATOR_BACKEND = "bots.messaging.backends.simulator.SimulatorBackend"


@register(Tags.compatibility)
def check_messaging(app_configs, **kwargs) -> list[Warning]:
    problems: list[Warning] = []
    if settings.DEBUG:
        return problems
    if settings.SWITCHBOARD_MESSAGING_BACKEND == SIMULATOR_BACKEND:
        problems.append(
            Warning(
                "Outbound messages go to the simulator, not to customers.",
                hint="Set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.",
                id="bots.W001",
            )
        )
    if not settings.TWILIO_AUTH_TOKEN:
        problems.append(
            Warning(
                "TWILIO_AUTH_TOKEN is not set: every Twilio webhook will be refused.",
                id="bots.W002",
            )
        )
    if not settings.PUBLIC_BASE_URL:
        problems.append(
            Warning(
                "PUBLIC_BASE_URL is not set: webhook signatures are checked against "
                "the URL as received, which fails behind a proxy, and Twilio is not "
                "asked for status callbacks.",
                id="bots.W003",
            )
        )
    return problems
