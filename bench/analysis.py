"""After the run: the database's record joined with what the clients saw.

Correctness (every count must be 0):
- lost: a webhook answered 200 whose message is not in a conversation; an agent's
  reply answered without error that was never stored; a customer's message to an
  agent that never showed on that agent's socket.
- duplicated: a message stored twice (a customer's message, a bot menu, an agent's
  reply), handed to the backend twice, or shown twice in one fragment.
- double_assigned: a task accepted by two workers (database), or a conversation
  two agents were both told they had (clients).
- over_capacity: a worker holding more reservations than capacity at any moment
  (from the reservations' lifetimes), or a console listing more conversations.
- status_regressed: a message whose status log goes backwards, or whose final
  status is behind the furthest one Twilio reported and we answered 200.
"""

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

import psycopg

from bench.customers import Customer
from bench.record import Record
from bench.stats import summarize

RANK = {
    "scheduled": 0, "pending": 0, "submitting": 1, "accepted": 2, "queued": 2,
    "sending": 3, "sent": 4, "delivered": 5, "read": 6,
}  # fmt: skip
FINAL = {"read", "failed", "undelivered", "canceled"}
BUSY = {"pending", "accepted", "wrapping"}


# Each reservation's lifetime as the rest of the system saw it: from the commit
# that made it (its `reservation.created` event row, never updated, carries that
# transaction) to the commit that ended it (the row's last version). The rows'
# own timestamps are taken before their transactions wait for locks, so a
# reservation made after another ended can appear to overlap it.
RESERVATIONS = """
SELECT r.id, r.task_id, r.worker_id, r.status,
       coalesce(pg_xact_commit_timestamp(e.xmin), r.created_at),
       coalesce(pg_xact_commit_timestamp(r.xmin), r.updated_at),
       t.created_at
FROM routing_reservation r
JOIN routing_task t ON t.id = r.task_id
JOIN routing_worker w ON w.id = r.worker_id
LEFT JOIN routing_event e ON e.reservation_id = r.id AND e.type = 'reservation.created'
WHERE w.name LIKE 'agent%%'
ORDER BY r.created_at, r.id
"""


def ts(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


async def _rows(connection: psycopg.AsyncConnection, sql: str) -> list[tuple]:
    cursor = await connection.execute(sql)
    return await cursor.fetchall()


async def analyse(
    database_url: str, record: Record, customers: list[Customer], capacity: int
) -> dict[str, Any]:
    async with await psycopg.AsyncConnection.connect(database_url) as connection:
        inbound = await _rows(
            connection,
            "SELECT provider_sid, from_address, body, conversation_id, created_at "
            "FROM bots_message WHERE direction = 'inbound'",
        )
        outbound = await _rows(
            connection,
            "SELECT id, conversation_id, author, body, status, created_at, sent_at "
            "FROM bots_message WHERE direction = 'outbound'",
        )
        handed_over = await _rows(
            connection,
            "SELECT message_id FROM bots_messageevent "
            "WHERE detail LIKE 'handed over%' GROUP BY 1 HAVING count(*) > 1",
        )
        status_log = await _rows(
            connection,
            "SELECT message_id, status FROM bots_messageevent ORDER BY message_id, id",
        )
        reservations = await _rows(
            connection,
            RESERVATIONS,
        )
        tasks = await _rows(connection, "SELECT id, created_at FROM routing_task")
        conversations = await _rows(
            connection, "SELECT opened_at, closed_at FROM bots_conversation"
        )
    correctness, detail = _correctness(
        record, inbound, outbound, handed_over, status_log, reservations, capacity
    )
    latencies = _latencies(record, inbound, outbound, reservations, tasks, capacity)
    return {
        "correctness": correctness,
        "correctness_detail": detail,
        "samples": latencies,
        "customers": Counter(customer.stage for customer in customers),
        "live_conversations_peak": _peak(
            [(ts(opened), ts(closed)) for opened, closed in conversations]
        ),
        "assignments": sum(
            1 for r in reservations if r[3] in ("accepted", "completed")
        ),
        "messages": {"inbound": len(inbound), "outbound": len(outbound)},
        "never_shown": await _never_shown(database_url, record),
    }


async def _never_shown(database_url: str, record: Record) -> list[dict[str, Any]]:
    """Where each customer message no agent was shown stands in the database."""
    found = []
    async with await psycopg.AsyncConnection.connect(database_url) as connection:
        for customer, pending in list(record.pending.items())[:20]:
            cursor = await connection.execute(
                "SELECT m.id, m.created_at, m.processed_at, c.id, c.phase, "
                "(SELECT string_agg(w.name || ':' || r.status, ',') "
                " FROM routing_reservation r"
                " JOIN routing_worker w ON w.id = r.worker_id"
                " WHERE r.task_id = c.task_id) "
                "FROM bots_message m LEFT JOIN bots_conversation c "
                "ON c.id = m.conversation_id WHERE m.body LIKE %s",
                (f"%{pending.token}",),
            )
            rows = await cursor.fetchall()
            found.append(
                {
                    "customer": customer,
                    "token": pending.token,
                    "sent_at": pending.sent_at,
                    "stored": [[str(v) for v in row] for row in rows],
                }
            )
    return found


def _correctness(
    record, inbound, outbound, handed_over, status_log, reservations, capacity
):
    detail: Counter[str] = Counter()
    detail.update(_lost(record, inbound, outbound))
    detail.update(_duplicated(record, inbound, outbound, handed_over))
    accepted = Counter(
        r[1] for r in reservations if r[3] in ("accepted", "wrapping", "completed")
    )
    detail["double_assigned_tasks"] = sum(1 for n in accepted.values() if n > 1)
    detail["double_assigned_seen"] = sum(
        1 for agents in record.accepted.values() if len(agents) > 1
    )
    detail["over_capacity_workers"] = _over_capacity(reservations, capacity)
    detail["over_capacity_seen"] = record.counts["over_capacity_seen"]
    detail.update(_regressions(record, outbound, status_log))
    correctness = {
        name: sum(n for key, n in detail.items() if key.startswith(f"{name}_"))
        for name in (
            "lost",
            "duplicated",
            "double_assigned",
            "over_capacity",
            "status_regressed",
        )
    }
    return correctness, dict(sorted(detail.items()))


def _reply_tokens(outbound) -> Counter[str]:
    """How many stored agent replies carry each token (the reply's last word)."""
    return Counter(
        body.rsplit(" ", 1)[-1]
        for _, _, author, body, *_ in outbound
        if author == "agent"
    )


def _lost(record, inbound, outbound) -> Counter[str]:
    found: Counter[str] = Counter()
    stored = {sid: conversation for sid, _, _, conversation, _ in inbound}
    for webhook in record.inbound.values():
        if 200 not in webhook.statuses:
            found["lost_inbound_not_accepted"] += 1
        elif stored.get(webhook.sid) is None:
            found["lost_inbound_not_in_conversation"] += 1
    found["lost_status_callback_not_accepted"] = sum(
        1 for posted in record.callbacks.values() for _, code in posted if code != 200
    )
    replies = _reply_tokens(outbound)
    found["lost_agent_reply_not_stored"] = sum(
        1 for token, reply in record.replies.items() if reply.ok and not replies[token]
    )
    found["lost_never_shown_to_agent"] = len(record.pending)
    return found


def _duplicated(record, inbound, outbound, handed_over) -> Counter[str]:
    found: Counter[str] = Counter()
    # Every message a customer writes is different: the same twice is a duplicate.
    per_customer = Counter((sender, body) for _, sender, body, _, _ in inbound)
    found["duplicated_inbound"] = sum(n - 1 for n in per_customer.values() if n > 1)
    replies = _reply_tokens(outbound)
    found["duplicated_agent_reply"] = sum(
        replies[token] - 1 for token in record.replies if replies[token] > 1
    )
    # The bot says one thing per conversation here: its menu.
    menus = Counter(o[1] for o in outbound if o[2] == "bot")
    found["duplicated_bot_reply"] = sum(n - 1 for n in menus.values() if n > 1)
    found["duplicated_handed_over"] = len(handed_over)
    found["duplicated_shown"] = (
        record.counts["shown_twice_offers"] + record.counts["shown_twice_messages"]
    )
    return found


def _regressions(record, outbound, status_log) -> Counter:
    found: Counter[str] = Counter()
    logs: defaultdict[int, list[str]] = defaultdict(list)
    for message_id, status in status_log:
        logs[message_id].append(status)
    for statuses in logs.values():
        ranks = [RANK[s] for s in statuses if s in RANK]
        if any(b < a for a, b in zip(ranks, ranks[1:], strict=False)):
            found["status_regressed_in_log"] += 1
    final = {o[0]: o[4] for o in outbound}
    for message_id, posted in record.callbacks.items():
        reported = [RANK[s] for s, code in posted if code == 200]
        status = final.get(message_id)
        if reported and status not in FINAL and RANK.get(status, -1) < max(reported):
            found["status_regressed_final"] += 1
    return found


def _over_capacity(reservations, capacity: int) -> int:
    """Workers who at some moment held more than `capacity` busy reservations."""
    changes: defaultdict[int, list[tuple[float, int]]] = defaultdict(list)
    for _, _, worker, status, created, updated, _ in reservations:
        changes[worker].append((created.timestamp(), 1))
        if status not in BUSY:
            changes[worker].append((updated.timestamp(), -1))
    over = 0
    for moments in changes.values():
        load = peak = 0
        for _, change in sorted(moments, key=lambda m: (m[0], m[1])):
            load += change
            peak = max(peak, load)
        over += peak > capacity
    return over


def _busy_at(reservations, moment: float, capacity: int, skip: int) -> bool:
    """Was every worker full at `moment` (not counting reservation `skip`)?"""
    load: Counter[int] = Counter()
    workers = set()
    for rid, _, worker, status, created, updated, _ in reservations:
        workers.add(worker)
        if rid == skip or created.timestamp() > moment:
            continue
        if status in BUSY or updated.timestamp() > moment:
            load[worker] += 1
    return all(load[worker] >= capacity for worker in workers)


def _latencies(record, inbound, outbound, reservations, tasks, capacity):
    samples = {name: list(values) for name, values in record.samples.items()}
    by_conversation: defaultdict[int, list[tuple[float, int]]] = defaultdict(list)
    for _, _, _, conversation, created in inbound:
        if conversation is not None:
            by_conversation[conversation].append((created.timestamp(), 0))
    bot_turn = samples.setdefault("bot_turn", [])
    for _, conversation, author, _, _, created, sent in outbound:
        if author != "bot" or sent is None:
            continue
        earlier = [
            t for t, _ in by_conversation[conversation] if t <= created.timestamp()
        ]
        if earlier:
            bot_turn.append(sent.timestamp() - max(earlier))
    sent_by_token = {
        body.rsplit(" ", 1)[-1]: ts(sent)
        for _, _, author, body, _, _, sent in outbound
        if author == "agent" and body
    }
    to_backend = samples.setdefault("agent_reply_to_backend", [])
    for token, reply in record.replies.items():
        if sent_by_token.get(token) is not None:
            to_backend.append(sent_by_token[token] - reply.posted_at)
    first: dict[int, tuple] = {}
    for row in reservations:
        first.setdefault(row[1], row)
    handoff = samples.setdefault("handoff_to_offer", [])
    offer = samples.setdefault("offer_to_agent_socket", [])
    waited = samples.setdefault("queue_wait", [])
    for rid, _, _, _, created, _, task_created in first.values():
        seen = record.offers_seen.get(rid)
        waited.append(created.timestamp() - task_created.timestamp())
        if seen is None:
            continue
        offer.append(seen - created.timestamp())
        if not _busy_at(reservations, task_created.timestamp(), capacity, rid):
            handoff.append(seen - task_created.timestamp())
    return {name: summarize(values) for name, values in sorted(samples.items())}


def _peak(intervals: list[tuple[float | None, float | None]]) -> int:
    moments = []
    for opened, closed in intervals:
        if opened is None:
            continue
        moments.append((opened, 1))
        if closed is not None:
            moments.append((closed, -1))
    live = peak = 0
    for _, change in sorted(moments, key=lambda m: (m[0], m[1])):
        live += change
        peak = max(peak, live)
    return peak
