from django.apps import AppConfig


class BotsConfig(AppConfig):
    name = "bots"
    verbose_name = "Bots and messaging"

    def ready(self) -> None:
        from bots import checks  # noqa: F401  (registers the system checks)
