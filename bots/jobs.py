"""Celery jobs, thin: each takes ids, calls one service, and is safe to run twice."""

import logging

from celery import shared_task

from bots.flows import services as flows
from bots.messaging import api as messaging
from bots.services import handoff, inbound

logger = logging.getLogger(__name__)

# Inbound messages older than this and still unprocessed are assumed to have lost
# their job (broker down at the time) and are processed by the sweep.
UNPROCESSED_AFTER_SECONDS = 15


@shared_task(name="bots.jobs.process_inbound")
def process_inbound(message_id: int) -> None:
    inbound.process_inbound(message_id=message_id)


@shared_task(name="bots.jobs.deliver_message")
def deliver_message(message_id: int) -> str:
    return messaging.deliver(message_id=message_id)


@shared_task(name="bots.jobs.sweep_messages")
def sweep_messages() -> dict[str, int]:
    """Beat's timer: whatever the database says is due and has no job in flight.

    Runs the work inline rather than queueing it, so it also recovers rows whose
    jobs were lost.
    """
    processed = 0
    for message_id in inbound.list_unprocessed_ids(
        older_than_seconds=UNPROCESSED_AFTER_SECONDS
    ):
        if inbound.process_inbound(message_id=message_id) is not None:
            processed += 1
    released = messaging.release_due_scheduled()
    sent = 0
    for message_id in messaging.list_due_pending():
        if messaging.deliver(message_id=message_id) != "skipped":
            sent += 1
    interrupted = messaging.fail_interrupted_sends()
    timeouts = sum(
        flows.fire_timeout(execution_id=execution_id) is not None
        for execution_id in flows.list_due_timeouts()
    )
    handoffs = handoff.reconcile_handoffs()
    result = {
        "handoffs_closed": handoffs,
        "processed": processed,
        "released": len(released),
        "sent": sent,
        "interrupted": interrupted,
        "timeouts": timeouts,
    }
    if any(result.values()):
        logger.info("sweep: %s", result)
    return result
