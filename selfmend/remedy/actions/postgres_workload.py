"""The queries a database runs and how often each ran, for the index advice to weigh.

One look at ``pg_stat_activity`` shows each session's last statement only: under a mixed load a
query that is one request in five is often in none of them at that instant (the lab's search by
SKU was not, when its index was dropped). So the workload comes from ``pg_stat_statements``
when the extension is installed and readable (every execution since its reset, by normalized
text), else from ``pg_stat_activity`` sampled every ``SAMPLE_EVERY`` seconds for
``SAMPLE_SECONDS``: each execution seen running, or as a session's last, counts once (a session
and its ``query_start`` name one execution), so a query is counted about as often as it runs.
The sampling is bounded so that planning a fix stays short. Query text is read, never run.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import structlog
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

log = structlog.get_logger(__name__)

SAMPLE_SECONDS = 2.0
SAMPLE_EVERY = 0.05
MAX_STATEMENTS = 500  # the most run ones; the rest are too rare to decide an index
_HIDDEN = "<insufficient privilege>"  # another role's query, without pg_read_all_stats

_EXTENSION_SCHEMA = text("""
    SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_stat_statements'
""")
_STATEMENTS = """
    SELECT s.query, s.calls FROM {schema}.pg_stat_statements s
    JOIN pg_database d ON d.oid = s.dbid
    WHERE d.datname = current_database() AND s.calls > 0 AND s.query <> :hidden
    ORDER BY s.total_exec_time DESC LIMIT :limit
"""
# Backend status is a snapshot per transaction: cleared before each look, or all looks are one.
_CLEAR_SNAPSHOT = text("SELECT pg_stat_clear_snapshot()")
_ACTIVITY = text("""
    SELECT pid, query_start, query FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
        AND backend_type = 'client backend' AND query <> '' AND query <> :hidden
        AND query_start IS NOT NULL
""")


@dataclass(frozen=True)
class Workload:
    source: str  # "pg_stat_statements" or "pg_stat_activity"
    executions: Counter[str]  # query text → how many times it ran (or was seen running)
    sampled_seconds: float = 0.0  # how long pg_stat_activity was sampled

    def describe(self) -> str:
        if self.source == "pg_stat_statements":
            return "pg_stat_statements"
        return f"pg_stat_activity sampled for {self.sampled_seconds:g} s"


def read_workload(
    connection: Connection, seconds: float = SAMPLE_SECONDS, every: float = SAMPLE_EVERY
) -> Workload:
    """The statements' counts if pg_stat_statements answers, else ``seconds`` of sampling."""
    statements = _statements(connection)
    if statements:
        return Workload("pg_stat_statements", statements)
    return _sampled(connection, seconds, every)


def _statements(connection: Connection) -> Counter[str] | None:
    """Calls by query text; None when the extension is absent, unloaded or unreadable."""
    schema = connection.execute(_EXTENSION_SCHEMA).scalar()
    if schema is None:
        return None
    quoted = connection.dialect.identifier_preparer.quote_identifier(schema)
    try:
        with connection.begin_nested():  # a failed read must not abort the plan's transaction
            rows = connection.execute(
                text(_STATEMENTS.format(schema=quoted)),
                {"hidden": _HIDDEN, "limit": MAX_STATEMENTS},
            ).all()
    except DBAPIError as error:  # not in shared_preload_libraries, or no right to read it
        log.info("index_advice.statements_unreadable", error=str(error.orig).strip())
        return None
    return Counter({query: calls for query, calls in rows})


def _sampled(connection: Connection, seconds: float, every: float) -> Workload:
    seen: dict[tuple[int, object], str] = {}
    started = time.monotonic()
    while True:
        connection.execute(_CLEAR_SNAPSHOT)
        for pid, query_start, query in connection.execute(_ACTIVITY, {"hidden": _HIDDEN}):
            seen[(pid, query_start)] = query
        elapsed = time.monotonic() - started
        if elapsed + every > seconds:
            break
        time.sleep(every)
    executions = Counter(dict(Counter(seen.values()).most_common(MAX_STATEMENTS)))
    return Workload("pg_stat_activity", executions, round(elapsed, 1))
