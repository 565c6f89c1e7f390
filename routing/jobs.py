"""Celery jobs for routing: beat's sweep. Thin; safe to run twice or at once."""

from celery import shared_task

from routing import services


@shared_task(name="routing.jobs.sweep_routing")
def sweep_routing() -> dict[str, int]:
    return services.sweep()
