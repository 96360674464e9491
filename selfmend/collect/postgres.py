"""PostgreSQL collector: connections by state, buffer cache hit ratio, longest running query."""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from selfmend.collect.base import samples_at
from selfmend.models import Sample
from selfmend.store.engine import make_engine

CONNECTIONS = text("""
    SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY 1
""")
CACHE_HIT_RATIO = text("""
    SELECT blks_hit::float8 / nullif(blks_hit + blks_read, 0) FROM pg_stat_database
    WHERE datname = current_database()
""")
LONGEST_QUERY = text("""
    SELECT coalesce(max(extract(epoch FROM clock_timestamp() - query_start)), 0)::float8
    FROM pg_stat_activity
    WHERE state = 'active' AND datname = current_database() AND pid <> pg_backend_pid()
""")


class PostgresCollector:
    name = "postgres"

    def __init__(self, url: str, engine: Engine | None = None) -> None:
        self.engine = engine or make_engine(url)
        self.database = make_url(url).database or "postgres"

    def collect(self) -> list[Sample]:
        with self.engine.connect() as connection:
            by_state = dict(connection.execute(CONNECTIONS).all())
            hit_ratio = connection.execute(CACHE_HIT_RATIO).scalar()
            longest = connection.execute(LONGEST_QUERY).scalar_one()
        labels = {"database": self.database}
        samples = samples_at(
            None,
            {
                "postgres.connections": sum(by_state.values()),
                "postgres.cache_hit_ratio": hit_ratio,
                "postgres.longest_query_seconds": longest,
            },
            labels,
        )
        ts = samples[0].ts
        for state, count in by_state.items():
            samples += samples_at(
                ts, {"postgres.connections_by_state": count}, {**labels, "state": state}
            )
        return samples
