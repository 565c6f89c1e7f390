"""What PostgreSQL was doing during the load: a sample of pg_stat_activity every
200 ms (how many of the application's connections were running a query, and what
each was waiting for: a row lock, the WAL flush of a commit, the client), the
database's counters before and after (transactions, connections opened), and the
statements that took the most time (pg_stat_statements)."""

import asyncio
from collections import Counter

import psycopg

ACTIVITY = """
SELECT a.state, coalesce(a.wait_event_type || ':' || a.wait_event, 'running'),
       left(regexp_replace(a.query, '\\s+', ' ', 'g'), 110),
       CASE WHEN a.wait_event_type = 'Lock' THEN (
         SELECT b.state || ': ' || left(regexp_replace(b.query, '\\s+', ' ', 'g'), 110)
         FROM pg_stat_activity b WHERE b.pid = (pg_blocking_pids(a.pid))[1]
       ) END
FROM pg_stat_activity a
WHERE a.datname = 'switchboard' AND a.pid <> pg_backend_pid()
  AND a.backend_type = 'client backend'
"""
COUNTERS = """
SELECT xact_commit, xact_rollback, sessions, tup_inserted, tup_updated,
       tup_fetched, deadlocks
FROM pg_stat_database WHERE datname = 'switchboard'
"""
STATEMENTS = """
SELECT calls, round(total_exec_time::numeric, 1), round(mean_exec_time::numeric, 3),
       rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 400)
FROM pg_stat_statements JOIN pg_database d ON d.oid = dbid
WHERE d.datname = 'switchboard'
ORDER BY total_exec_time DESC LIMIT 12
"""
INTERVAL = 0.2
NAMES = (
    "commits", "rollbacks", "connections_opened", "rows_inserted", "rows_updated",
    "rows_fetched", "deadlocks",
)  # fmt: skip


class Sampler:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.states: Counter[str] = Counter()
        self.locks: Counter[str] = Counter()
        self.samples = 0
        self.connections = 0
        self.statements: list[dict] = []
        self.before: dict[str, int] = {}
        self.after: dict[str, int] = {}

    async def run(self, stop: asyncio.Event) -> None:
        async with await psycopg.AsyncConnection.connect(
            self.database_url, autocommit=True
        ) as connection:
            await connection.execute(
                "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
            )
            await connection.execute("SELECT pg_stat_statements_reset()")
            self.before = await self._counters(connection)
            while not stop.is_set():
                cursor = await connection.execute(ACTIVITY)
                rows = await cursor.fetchall()
                self.samples += 1
                self.connections = max(self.connections, len(rows))
                for state, waiting, query, blocker in rows:
                    if state == "active":
                        self.states[waiting] += 1
                        if waiting.startswith("Lock:"):
                            self.locks[f"{query} <- blocked by {blocker}"] += 1
                    elif state == "idle in transaction":
                        self.states["idle in transaction"] += 1
                await asyncio.sleep(INTERVAL)
            self.after = await self._counters(connection)
            cursor = await connection.execute(STATEMENTS)
            self.statements = [
                {
                    "calls": c,
                    "total_ms": float(t),
                    "mean_ms": float(m),
                    "rows": r,
                    "sql": q,
                }
                for c, t, m, r, q in await cursor.fetchall()
            ]

    async def _counters(self, connection: psycopg.AsyncConnection) -> dict[str, int]:
        cursor = await connection.execute(COUNTERS)
        row = await cursor.fetchone()
        return dict(zip(NAMES, row or (), strict=False))

    def summary(self, seconds: float) -> dict:
        per_sample = max(self.samples, 1)
        return {
            "connections_peak": self.connections,
            "active_queries_mean": round(
                sum(n for k, n in self.states.items() if k != "idle in transaction")
                / per_sample,
                2,
            ),
            # mean number of backends in each state, per sample: active ones by
            # what they wait for, and those idle inside an open transaction
            "active_by_wait": {
                name: round(count / per_sample, 3)
                for name, count in self.states.most_common(8)
            },
            "lock_waits_by_query": dict(self.locks.most_common(6)),
            "top_statements_by_time": self.statements,
            "per_second": {
                name: round((self.after.get(name, 0) - value) / seconds, 1)
                for name, value in self.before.items()
                if seconds > 0
            },
        }
