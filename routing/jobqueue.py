"""Hand work to Celery after commit without ever failing the caller.

The database row is the record of work to do; the queued job only makes it happen
sooner. If the broker is unreachable the error is logged and the caller carries on:
beat's sweep finds the row later. This is what lets a webhook answer 200 with the
broker down.
"""

import logging

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_on_commit(job: str, *args: object, countdown: float | None = None) -> None:
    """Queue the Celery job named `job` with `args` once the transaction commits."""
    transaction.on_commit(
        lambda: enqueue_now(job, *args, countdown=countdown), robust=True
    )


def enqueue_now(job: str, *args: object, countdown: float | None = None) -> bool:
    try:
        current_app.send_task(job, args=list(args), countdown=countdown)
    except Exception as exc:
        logger.warning(
            "broker unreachable, %s%r left for the sweeper: %s", job, args, exc
        )
        return False
    return True
