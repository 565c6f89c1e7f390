from celery import shared_task

from agents import presence


@shared_task(name="agents.jobs.sweep_absent_agents")
def sweep_absent_agents() -> int:
    return presence.sweep_absent()
