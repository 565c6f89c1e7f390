"""Is an agent's console connected? Consoles ping; an agent silent for longer than
SWITCHBOARD_CONSOLE_OFFLINE_AFTER seconds is moved Offline by beat's sweep."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from agents.models import Presence
from routing import services as routing
from routing.models import Worker


def seen(*, worker_id: int) -> None:
    Presence.objects.update_or_create(
        worker_id=worker_id, defaults={"last_seen": timezone.now()}
    )


def sweep_absent() -> int:
    """Move agents whose consoles all went quiet to Offline; how many were moved."""
    cutoff = timezone.now() - timedelta(
        seconds=settings.SWITCHBOARD_CONSOLE_OFFLINE_AFTER
    )
    # Agents only (workers with a login); one who never opened a console counts
    # from when they were made available.
    absent = Worker.objects.filter(
        Q(presence__last_seen__lt=cutoff)
        | Q(presence__isnull=True, activity_changed_at__lt=cutoff),
        activity__available=True,
        user__isnull=False,
    ).values_list("pk", flat=True)
    moved = 0
    for worker_id in list(absent):
        routing.set_worker_activity(worker_id=worker_id, activity="Offline")
        moved += 1
    return moved
