"""Run the same code in several OS processes at once, against the real database.

Each call runs in its own forked process with its own connection. The children
connect first, then wait at a barrier so they start together. With a `gate`
table, the parent also holds a SHARE ROW EXCLUSIVE lock on that table while they
start: every child's first write to it (INSERT, UPDATE; with `gate_mode=
ROW_LOCKS` also SELECT ... FOR UPDATE) queues behind the lock, the parent waits
until all of them are queued there, and only then lets them all go at once. That
turns "they probably overlapped" into "they certainly did": a test whose racers
never meet at the gate fails rather than passing on a race that did not happen.
"""

import multiprocessing
import queue
import time
import traceback
from collections.abc import Callable, Sequence

from django.db import connection, connections, models, transaction

FORK = multiprocessing.get_context("fork")
TIMEOUT = 30.0
GATE_WAIT = 10.0
# Plain reads pass both; WRITES stops INSERT/UPDATE/DELETE, ROW_LOCKS also FOR UPDATE.
WRITES = "SHARE ROW EXCLUSIVE"
ROW_LOCKS = "EXCLUSIVE"


class RaceError(AssertionError):
    pass


def race(
    target: Callable,
    calls: Sequence[tuple],
    *,
    gate: type[models.Model] | None = None,
    gate_mode: str = WRITES,
    timeout: float = TIMEOUT,
) -> list:
    """`target(*args)` for each args of `calls`, all at once; results in call order.

    A child that raises fails the race with the child's traceback. With `gate`,
    also fails unless every child was seen waiting to write to the gate's table.
    """
    connections.close_all()  # a forked child must never share the parent's socket
    barrier = FORK.Barrier(len(calls) + 1, timeout=timeout)
    results = FORK.Queue()
    children = [
        FORK.Process(
            target=_child,
            args=(index, target, args, barrier, results),
            name=f"racer-{index}",
            daemon=True,
        )
        for index, args in enumerate(calls)
    ]
    for child in children:
        child.start()
    blocked = None
    try:
        if gate is None:
            barrier.wait()
        else:
            blocked = _release_through_gate(gate, gate_mode, barrier, len(calls))
        outcomes = _collect(results, len(calls), timeout)
    finally:
        for child in children:
            child.join(timeout=5)
            if child.is_alive():
                child.kill()
                child.join()
        connections.close_all()
    errors = [value for kind, value in outcomes if kind == "error"]
    if errors:
        raise RaceError(f"{len(errors)} racer(s) failed:\n" + "\n".join(errors))
    if blocked is not None and blocked < len(calls):
        raise RaceError(
            f"only {blocked} of {len(calls)} racers were seen waiting at the "
            f"{gate_mode} lock on {gate._meta.db_table}: the race was not exercised"
        )
    return [value for _, value in outcomes]


def _child(index, target, args, barrier, results) -> None:
    try:
        connection.ensure_connection()  # connect before the start line
        barrier.wait()
        outcome = ("ok", target(*args))
    except BaseException:
        outcome = ("error", f"racer {index}:\n{traceback.format_exc()}")
    finally:
        connections.close_all()
    results.put((index, *outcome))


def _release_through_gate(
    gate: type[models.Model], mode: str, barrier, racers: int
) -> int:
    """Hold the gate table while the racers start; how many were seen queued on it.

    Returning leaves the transaction, which releases the lock: all go at once.
    """
    table = connection.ops.quote_name(gate._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {table} IN {mode} MODE")
        barrier.wait()
        deadline = time.monotonic() + GATE_WAIT
        while True:
            # pg_locks is live (pg_stat_activity would be frozen for this transaction).
            cursor.execute(
                "SELECT count(DISTINCT pid) FROM pg_locks "
                "WHERE NOT granted AND relation = %s::regclass",
                [gate._meta.db_table],
            )
            blocked = cursor.fetchone()[0]
            if blocked >= racers or time.monotonic() > deadline:
                return blocked
            time.sleep(0.01)


def _collect(results, count: int, timeout: float) -> list[tuple[str, object]]:
    outcomes: dict[int, tuple[str, object]] = {}
    deadline = time.monotonic() + timeout
    while len(outcomes) < count:
        try:
            index, kind, value = results.get(
                timeout=max(deadline - time.monotonic(), 0.1)
            )
        except queue.Empty:
            missing = sorted(set(range(count)) - set(outcomes))
            raise RaceError(
                f"racers {missing} did not report within {timeout:.0f}s"
            ) from None
        outcomes[index] = (kind, value)
    return [outcomes[index] for index in range(count)]
