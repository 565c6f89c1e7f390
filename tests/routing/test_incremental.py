"""Routing looks at what an event changed, not at everything that waits.

A freed worker is offered the heads of their queues until full; the cost of that
does not grow with the tasks waiting elsewhere or behind the heads.
"""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from routing import services
from routing.models import Task
from tests.routing.center import accept, hire, new_task, offers, single_step


def statements(action) -> int:
    with CaptureQueriesContext(connection) as captured:
        action()
    return len(captured.captured_queries)


def waiting(count: int, **kw) -> list[Task]:
    return [new_task(**kw) for _ in range(count)]


def test_a_worker_going_available_is_offered_the_best_head_of_their_queues(center):
    ana = hire("ana", "es", "en", activity="Offline")
    english = waiting(2, attributes={"language": "en"})
    center.advance(1)
    urgent = new_task(attributes={"language": "es"}, priority=3)

    services.set_worker_activity(worker_id=ana.pk, activity="Available")

    assert offers(urgent) == [("ana", "pending")]
    assert [offers(t) for t in english] == [[], []]


def test_completing_a_chat_offers_the_oldest_waiting_task_to_that_worker(center):
    ana = hire("ana", "es")
    first = new_task()
    accept(first)
    queued = waiting(3)

    services.complete_task(task_id=first.pk)

    assert [offers(t) for t in queued] == [[("ana", "pending")], [], []]
    assert ana.pk == Task.objects.get(pk=queued[0].pk).reservations.get().worker_id


def statements_to_free(speaking: str, english_waiting: int) -> int:
    """Statements run when a new worker speaking `speaking` goes Available while
    `english_waiting` English tasks wait."""
    worker = hire(f"{speaking}{english_waiting}", speaking, activity="Offline")
    waiting(english_waiting, attributes={"language": "en"})
    return statements(
        lambda: services.set_worker_activity(worker_id=worker.pk, activity="Available")
    )


def test_the_cost_of_a_freed_worker_does_not_grow_with_the_waiting_tasks(center):
    few = statements_to_free("en", 3)
    Task.objects.all().delete()
    many = statements_to_free("en", 60)

    assert few == many


def test_tasks_in_queues_the_worker_is_not_in_are_not_looked_at(center):
    none = statements_to_free("es", 0)
    many = statements_to_free("es", 30)

    assert none == many
    assert Task.objects.filter(status="reserved").count() == 0


def test_heads_refused_by_a_step_expression_are_paged_past(center):
    # Nobody below level 3 takes these; a level-3 worker arrives after 25 of them.
    single_step("Senior", queue="Everyone", expression="worker.level >= task.level")
    for _ in range(25):
        new_task("Senior", attributes={"level": 5})
    reachable = new_task("Senior", attributes={"level": 3})
    ana = hire("ana", level=3, activity="Offline")

    services.set_worker_activity(worker_id=ana.pk, activity="Available")

    assert offers(reachable) == [("ana", "pending")]
    assert Task.objects.filter(status="reserved").count() == 1


def test_a_lifo_queue_offers_its_newest_head_to_a_freed_worker(center):
    single_step("Latest", queue="Newest")
    ana = hire("ana", activity="Offline")
    tasks = []
    for _ in range(3):
        tasks.append(new_task("Latest"))
        center.advance(1)

    services.set_worker_activity(worker_id=ana.pk, activity="Available")

    assert [bool(offers(t)) for t in tasks] == [False, False, True]


def test_a_task_directed_to_a_worker_is_offered_when_that_worker_is_free(center):
    hire("ana", "es")
    held = new_task()
    accept(held)
    ben = hire("ben", "es", activity="Offline")
    direct = services.transfer_task(task_id=held.pk, worker="ben")
    unoffered = offers(direct)

    services.set_worker_activity(worker_id=ben.pk, activity="Available")

    assert (unoffered, offers(direct)) == ([], [("ben", "pending")])


def test_the_sweep_offers_what_no_event_did_only_with_its_safety_net(center):
    ana = hire("ana", "es")
    accept(new_task())
    stuck = new_task()
    # Room appears without a routing event (a row written behind routing's back).
    ana.channels.update(capacity=2)

    quiet = services.sweep(safety_net=False)
    before = offers(stuck)
    services.sweep()

    assert (quiet["reservations_created"], before) == (0, [])
    assert offers(stuck) == [("ana", "pending")]


def test_a_rejected_offer_goes_to_the_next_worker_and_the_rejecter_gets_other_work(
    center,
):
    ana = hire("ana", "es", "en")
    center.advance(1)
    ben = hire("ben", "es")
    spanish = new_task()
    english = new_task(attributes={"language": "en"})

    services.reject_reservation(reservation_id=spanish.reservations.get().pk)

    assert offers(spanish) == [("ana", "rejected"), ("ben", "pending")]
    assert offers(english) == [("ana", "pending")]
    assert ben.pk != ana.pk


def test_beat_skips_a_sweep_while_another_is_running(center):
    from django.core.cache import cache

    from routing import jobs

    hire("ana", "es")
    task = new_task()
    center.advance(25)  # the offer is past its deadline
    cache.add(jobs.SWEEPING, 1)
    skipped = jobs.sweep_routing()
    still = offers(task)
    cache.delete(jobs.SWEEPING)

    done = jobs.sweep_routing()

    assert (skipped, still) == ({}, [("ana", "pending")])
    assert done["reservations_timed_out"] == 1
    assert cache.get(jobs.SWEEPING) is None
