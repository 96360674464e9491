"""SQLAlchemy 2.0 tables of selfmend's store; Alembic migrations under ``migrations/`` create them.

Times are seconds since the epoch (float): portable between SQLite and PostgreSQL, cheap to
compare, and the same unit the wire types carry.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

series = Table(
    "series",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(400), nullable=False, unique=True),
    Column("name", String(200), nullable=False, index=True),
    Column("labels", JSON, nullable=False, default=dict),
    # Detector state and the analysis cursor live with the series so any worker can resume it.
    Column("detector_state", JSON, nullable=True),
    Column("analyzed_until", Float, nullable=False, default=0.0),
)

# No primary key and no foreign key: the batch path appends millions of rows, and an index on
# (series_id, ts) is what every read uses.
samples = Table(
    "samples",
    metadata,
    Column("series_id", Integer, nullable=False),
    Column("ts", Float, nullable=False),
    Column("value", Float, nullable=False),
    Index("ix_samples_series_id_ts", "series_id", "ts"),
)

log_events = Table(
    "log_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ts", Float, nullable=False, index=True),
    Column("level", String(20), nullable=False),
    Column("message", Text, nullable=False),
    Column("logger", String(200), nullable=False, default=""),
)

anomalies = Table(
    "anomalies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("series_id", Integer, ForeignKey("series.id"), nullable=False),
    Column("ts", Float, nullable=False),
    Column("value", Float, nullable=False),
    Column("score", Float, nullable=False),
    Column("detector", String(100), nullable=False),
    Index("ix_anomalies_series_id_ts", "series_id", "ts"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("pattern", String(100), nullable=False),
    Column("target", String(400), nullable=False),
    Column("severity", String(20), nullable=False),
    Column("status", String(30), nullable=False, index=True),
    Column("series_key", String(400), nullable=True),
    Column("root_cause", Text, nullable=True),
    Column("evidence", JSON, nullable=False, default=dict),
    # "pattern|target" while the incident is open, NULL once closed: the unique constraint is
    # what keeps a still-open incident from being opened again, even by two analyzers at once.
    Column("open_key", String(500), nullable=True, unique=True),
    Column("reopen_count", Integer, nullable=False, default=0),
    Column("opened_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("closed_at", Float, nullable=True),
)

# The audit and transaction log: append-only, one row per state change.
executions = Table(
    "executions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("action", String(100), nullable=False),
    Column("target", String(400), nullable=False),
    Column("state", String(30), nullable=False),
    Column("risk", String(20), nullable=False),
    Column("params", JSON, nullable=False, default=dict),
    Column("undo", JSON, nullable=True),
    Column("result", JSON, nullable=True),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    # "<incident>:<action>:<state>": a redelivered message cannot log (or do) a step twice.
    Column("idempotency_key", String(300), nullable=True, unique=True),
    Column("created_at", Float, nullable=False),
    Index("ix_executions_action_target_state", "action", "target", "state"),
)

verifications = Table(
    "verifications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("execution_id", Integer, ForeignKey("executions.id"), nullable=False),
    Column("before", JSON, nullable=False),
    Column("after", JSON, nullable=False),
    Column("verdict", String(20), nullable=False),
    Column("created_at", Float, nullable=False),
)

# Outcome counts per (pattern, action): the Beta posterior of "this fix works here".
patterns = Table(
    "patterns",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("action", String(100), primary_key=True),
    Column("successes", Integer, nullable=False, default=0),
    Column("failures", Integer, nullable=False, default=0),
    Column("updated_at", Float, nullable=False),
)

controls = Table(
    "controls",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", JSON, nullable=True),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", Float, nullable=False),
)

kill_switches = Table(
    "kill_switches",
    metadata,
    Column("scope", String(100), primary_key=True),  # "*" or an action name
    Column("enabled", Boolean, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Digests of the pushed batches already stored: a batch delivered twice (a drain that died
# before it removed the batch, a client that retried a push) is stored once.
push_batches = Table(
    "push_batches",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("stored_at", Float, nullable=False, index=True),
)

# The push buffer of the embedded default (Redis holds it in production).
push_queue = Table(
    "push_queue",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("payload", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

# The outbox of messages to a person (escalations, approval requests): written in the same
# transaction as the incident's change, delivered by the notify stage, retried until sent.
notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("kind", String(40), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("sent_at", Float, nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_notifications_sent_at_next_attempt_at", "sent_at", "next_attempt_at"),
)

# Leases: one holder at a time for what must run once (the beat that schedules the stages). A
# lease taken over from a holder that let it lapse gets a higher epoch, so work stamped with the
# old one can be told apart and ignored.
leases = Table(
    "leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("epoch", Integer, nullable=False),
    Column("expires_at", Float, nullable=False),
)
