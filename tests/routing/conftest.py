"""Fixtures of the routing tests: the virtual clock and the contact center."""

import pytest

from routing import clock as routing_clock
from routing import services
from routing.models import TaskChannel, TaskQueue
from tests.routing.center import SUPPORT, VirtualClock, workflow


@pytest.fixture
def clock():
    virtual = VirtualClock()
    with routing_clock.using(virtual):
        yield virtual


@pytest.fixture
def center(db, clock):
    """Activities, chat and sms, queues by language, and the Support workflow."""
    services.ensure_workspace()
    for name in ("chat", "sms"):
        TaskChannel.objects.create(unique_name=name)
    TaskQueue.objects.create(name="Spanish", target_workers="languages HAS 'es'")
    TaskQueue.objects.create(name="English", target_workers="languages HAS 'en'")
    TaskQueue.objects.create(name="Everyone", target_workers="1==1")
    TaskQueue.objects.create(
        name="Trio", target_workers="team == 'trio'", max_reserved_workers=3
    )
    TaskQueue.objects.create(name="Newest", target_workers="1==1", task_order="LIFO")
    workflow("Support", SUPPORT)
    return clock
