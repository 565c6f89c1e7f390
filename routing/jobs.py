"""Celery jobs for routing: beat's sweep. Thin; safe to run twice or at once."""

from celery import shared_task
from django.core.cache import cache

from routing import services

SWEEPING = "routing:sweeping"


@shared_task(name="routing.jobs.sweep_routing")
def sweep_routing() -> dict[str, int]:
    """Beat's routing sweep. A sweep still running elsewhere makes this one a
    no-op: overlapping sweeps would only repeat each other's work."""
    if not cache.add(SWEEPING, 1, timeout=60):
        return {}
    try:
        return services.sweep()
    finally:
        cache.delete(SWEEPING)
