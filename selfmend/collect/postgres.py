"""PostgreSQL collector: connections by state, the oldest query, transaction, lock wait and lock
blocker in ``pg_stat_activity``, cache, deadlock and temp-file counters of ``pg_stat_database``,
and the cluster's connection use, transaction-id age, replication lag and dead tuples."""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from selfmend.collect.base import samples_at
from selfmend.models import Sample
from selfmend.store.engine import DatabaseTimeouts, make_engine

SERIES = (
    "postgres.connections",
    "postgres.connections_by_state",
    "postgres.connection_utilization",
    "postgres.longest_query_seconds",
    "postgres.longest_transaction_seconds",
    "postgres.longest_idle_in_transaction_seconds",
    "postgres.lock_waits",
    "postgres.oldest_blocker_seconds",
    "postgres.cache_hit_ratio",
    "postgres.deadlocks_total",
    "postgres.temp_bytes_total",
    "postgres.xid_age",
    "postgres.replication_lag_seconds",
    "postgres.dead_tuple_ratio",
    "postgres.seq_rows_read_total",
)
"""Every series this collector emits (some only where there is something to measure)."""

STATES = (
    "active",
    "idle",
    "idle in transaction",
    "idle in transaction (aborted)",
    "fastpath function call",
    "disabled",
)
"""Every state ``pg_stat_activity`` knows: each has a ``connections_by_state`` sample, 0 when no
session is in it, so a pattern on a state sees it empty out rather than its series stop."""

CONNECTIONS = text("""
    SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY 1
""")
# Client backends only: a long autovacuum is not a stuck query.
ACTIVITY = text("""
    SELECT
        coalesce(max(extract(epoch FROM clock_timestamp() - query_start))
            FILTER (WHERE state = 'active'), 0)::float8,
        coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)::float8,
        coalesce(max(extract(epoch FROM clock_timestamp() - state_change))
            FILTER (WHERE state LIKE 'idle in transaction%'), 0)::float8,
        count(*) FILTER (WHERE wait_event_type = 'Lock')
    FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
        AND backend_type = 'client backend'
""")
# The cause of a lock queue rather than its size: how long the oldest transaction at its head
# (blocking a waiter, not itself waiting on a lock) has been open. A statement timeout ends each
# waiter after seconds and the queue's length dips, but whoever holds the lock ages on; 0 when no
# session waits. A blocker outside any transaction (a session-level advisory lock) has no age.
BLOCKERS = text("""
    SELECT coalesce(max(extract(epoch FROM clock_timestamp() - b.xact_start)), 0)::float8
    FROM pg_stat_activity w
    CROSS JOIN unnest(pg_blocking_pids(w.pid)) AS blocking(pid)
    JOIN pg_stat_activity b ON b.pid = blocking.pid
    WHERE w.datname = current_database() AND w.backend_type = 'client backend'
        AND w.wait_event_type = 'Lock' AND b.backend_type = 'client backend'
        AND b.wait_event_type IS DISTINCT FROM 'Lock'
""")
DATABASE = text("""
    SELECT blks_hit::float8 / nullif(blks_hit + blks_read, 0), deadlocks, temp_bytes
    FROM pg_stat_database WHERE datname = current_database()
""")
CLUSTER = text("""
    SELECT
        (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::float8
            / current_setting('max_connections')::float8,
        (SELECT max(age(datfrozenxid)) FROM pg_database)::float8,
        (SELECT extract(epoch FROM max(replay_lag)) FROM pg_stat_replication)::float8
""")
# Small tables churn through dead tuples harmlessly: only tables of 10,000 rows or more count.
# Rows read by sequential scans, a counter: its rate is what a missing index costs.
TABLES = text("""
    SELECT
        max(n_dead_tup::float8 / (n_live_tup + n_dead_tup))
            FILTER (WHERE n_live_tup + n_dead_tup >= 10000),
        coalesce(sum(seq_tup_read), 0)::float8
    FROM pg_stat_user_tables
""")


class PostgresCollector:
    name = "postgres"

    def __init__(
        self, url: str, engine: Engine | None = None, timeouts: DatabaseTimeouts | None = None
    ) -> None:
        self.engine = engine or make_engine(url, timeouts)
        self.database = make_url(url).database or "postgres"

    def collect(self) -> list[Sample]:
        with self.engine.connect() as connection:
            by_state = dict.fromkeys(STATES, 0) | dict(connection.execute(CONNECTIONS).all())
            longest_query, longest_transaction, longest_idle, lock_waits = connection.execute(
                ACTIVITY
            ).one()
            oldest_blocker = connection.execute(BLOCKERS).scalar_one()
            hit_ratio, deadlocks, temp_bytes = connection.execute(DATABASE).one()
            utilization, xid_age, replication_lag = connection.execute(CLUSTER).one()
            dead_tuple_ratio, seq_rows_read = connection.execute(TABLES).one()
        labels = {"database": self.database}
        samples = samples_at(
            None,
            {
                "postgres.connections": sum(by_state.values()),
                "postgres.connection_utilization": utilization,
                "postgres.longest_query_seconds": longest_query,
                "postgres.longest_transaction_seconds": longest_transaction,
                "postgres.longest_idle_in_transaction_seconds": longest_idle,
                "postgres.lock_waits": lock_waits,
                "postgres.oldest_blocker_seconds": oldest_blocker,
                "postgres.cache_hit_ratio": hit_ratio,
                "postgres.deadlocks_total": deadlocks,
                "postgres.temp_bytes_total": temp_bytes,
                "postgres.xid_age": xid_age,
                "postgres.replication_lag_seconds": replication_lag,
                "postgres.dead_tuple_ratio": dead_tuple_ratio,
                "postgres.seq_rows_read_total": seq_rows_read,
            },
            labels,
        )
        ts = samples[0].ts
        for state, count in by_state.items():
            samples += samples_at(
                ts, {"postgres.connections_by_state": count}, {**labels, "state": state}
            )
        return samples
