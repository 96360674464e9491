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
    Index("ix_anomalies_ts", "ts"),  # retention prunes by age
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
    # The cooldown's "when did this action last run here", and the per-hour cap's count.
    Index(
        "ix_executions_action_target_state_created_at", "action", "target", "state", "created_at"
    ),
    Index("ix_executions_state_created_at", "state", "created_at"),
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

# A series' sensitivity, when someone set one (the default, 1, otherwise): about this many times
# the detector's default rate of alarms. Apart from ``series``, whose rows every pass rewrites:
# few series have one, and the analyze pass reads its shard's in one query.
sensitivities = Table(
    "sensitivities",
    metadata,
    Column("series_id", Integer, ForeignKey("series.id"), primary_key=True),
    Column("sensitivity", Float, nullable=False),
    Column("set_by", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("set_at", Float, nullable=False),
)

# Who changed a live setting, a kill switch or a series' sensitivity, from what to what: one row
# per set or delete, appended in the change's transaction (the tables above keep only the latest
# value).
control_changes = Table(
    "control_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(20), nullable=False),  # control | kill_switch | sensitivity
    # The setting's key, the switch's scope, or the series' key (as long as ``series.key``).
    Column("key", String(400), nullable=False),
    Column("old", JSON, nullable=True),  # None: it was not set
    Column("new", JSON, nullable=True),  # None: it was deleted
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_control_changes_key_created_at", "key", "created_at"),
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

# The resilient writer's healing rules per (database, table, input key → column): a learned rule
# heals deterministically, a rejected one is never used again by any step, and model_seen counts
# the model's answers so the optimizer can promote the ones it keeps giving.
write_heal_rules = Table(
    "write_heal_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("database", String(200), nullable=False),
    Column("table_name", String(200), nullable=False),
    Column("source_key", String(200), nullable=False),
    Column("column_name", String(200), nullable=False),
    Column("learned", Boolean, nullable=False, default=False),
    Column("learned_by", String(200), nullable=True),
    Column("model_seen", Integer, nullable=False, default=0),
    Column("rejected_at", Float, nullable=True),
    Column("rejected_by", String(200), nullable=True),
    Column("reason", Text, nullable=True),
    Column("updated_at", Float, nullable=False, index=True),
    Index(
        "uq_write_heal_rules_mapping",
        "database",
        "table_name",
        "source_key",
        "column_name",
        unique=True,
    ),
)

# The writer's transaction log: one entry per healed row, written before the application's
# transaction commits, with what was sent, what was written, the rule per healed key and the
# row's primary key, so the write can be rolled back.
write_heals = Table(
    "write_heals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("database", String(200), nullable=False),
    Column("table_name", String(200), nullable=False),
    Column("operation", String(20), nullable=False),  # insert | update
    Column("sent", JSON, nullable=False),
    Column("written", JSON, nullable=False),
    Column("heals", JSON, nullable=False),  # {input key: {"column": ..., "rule": ...}}
    Column("row_key", JSON, nullable=False),  # the written row's primary key
    Column("before", JSON, nullable=True),  # an update's previous values of the written columns
    Column("state", String(20), nullable=False),  # written | not_written | rolled_back
    Column("created_at", Float, nullable=False, index=True),
    Column("rolled_back_at", Float, nullable=True),
    Column("rolled_back_by", String(200), nullable=True),
)

# Circuit breakers of the embedded default (Redis holds them in production): one row per named
# breaker. ``version`` rises on every transition; a transition is one conditional UPDATE on
# (state, version), so of several processes racing to make it exactly one does.
breakers = Table(
    "breakers",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("state", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    Column("since", Float, nullable=False),
    Column("probes", Integer, nullable=False, default=0),  # half-open probe slots taken
    Column("successes", Integer, nullable=False, default=0),  # half-open probes that succeeded
    Column("base_settings", JSON, nullable=True),  # as the application declared them
    Column("overrides", JSON, nullable=False, default=dict),  # set by operators and actions
    Column("settings_version", Integer, nullable=False, default=0),
)

# The sliding window of the embedded default: the latest calls of each breaker, tagged with the
# breaker's version so that calls admitted before a transition never count after it.
breaker_calls = Table(
    "breaker_calls",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("breaker", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("failed", Boolean, nullable=False),
    Column("process", String(200), nullable=False),
    Index("ix_breaker_calls_breaker_version_id", "breaker", "version", "id"),
)

# Every transition of every breaker, whichever storage holds the state: the evidence (window
# counts, settings in force) the weekly optimizer learns thresholds from.
breaker_events = Table(
    "breaker_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("breaker", String(200), nullable=False),
    Column("from_state", String(20), nullable=False),
    Column("to_state", String(20), nullable=False),
    # The breaker's version after the transition: its transitions in the order they were made,
    # whichever processes made them and whenever their rows were written.
    Column("version", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("process", String(200), nullable=False),
    Column("evidence", JSON, nullable=False, default=dict),
    Column("created_at", Float, nullable=False),
    Index("ix_breaker_events_breaker_created_at", "breaker", "created_at"),
    Index("ix_breaker_events_created_at", "created_at"),  # retention prunes by age
)

# Versions of each watched database's schema: ``number`` counts up per database, and being
# unique with it, two watchers that saw the same change record it once.
schema_versions = Table(
    "schema_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("database", String(200), nullable=False),
    Column("number", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("fingerprint", JSON, nullable=False),  # the canonical form the digest is taken of
    Column("created_at", Float, nullable=False),
    Index("uq_schema_versions_database_number", "database", "number", unique=True),
)

# What changed from the previous version of the same database, each change with its severity.
schema_changes = Table(
    "schema_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version_id", Integer, ForeignKey("schema_versions.id"), nullable=False, index=True),
    Column("kind", String(40), nullable=False),
    Column("severity", String(20), nullable=False),
    Column("table_name", String(200), nullable=False),
    Column("column_name", String(200), nullable=True),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
)

# Raw samples past their retention, folded into aggregates per series and time bucket at two
# resolutions (60 and 3600 s). A sample is deleted in the transaction that folds it in, so an
# aggregate merges exactly with the next one folded into the same bucket: min of the mins, max
# of the maxes, sums and counts added (the mean is sum / count).
sample_rollups = Table(
    "sample_rollups",
    metadata,
    Column("series_id", Integer, primary_key=True),
    Column("resolution", Integer, primary_key=True),
    Column("bucket", Float, primary_key=True),  # start of the bucket, a multiple of resolution
    Column("min_value", Float, nullable=False),
    Column("max_value", Float, nullable=False),
    Column("value_sum", Float, nullable=False),
    Column("value_count", Integer, nullable=False),
    Index("ix_sample_rollups_resolution_bucket", "resolution", "bucket"),  # pruned by age
)

# /metrics' audit-log counters, (action, state) -> rows ever written: folded in from the
# executions log by id (``summary_cursors`` holds how far), so a scrape reads this table plus
# the rows after the cursor, and pruning or archiving the log never lowers a counter.
step_counts = Table(
    "step_counts",
    metadata,
    Column("action", String(100), primary_key=True),
    Column("state", String(30), primary_key=True),
    Column("count", Integer, nullable=False),
)

summary_cursors = Table(
    "summary_cursors",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("position", Integer, nullable=False),  # the last row id folded into the summary
)

# The audit log past its retention: executions and verifications of incidents closed long ago,
# and summaries of collapsed repeated ``skipped`` rows, each moved here in the transaction that
# deletes it from the hot tables, as the JSON of the row it was.
audit_archive = Table(
    "audit_archive",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(40), nullable=False),  # executions | verifications | skipped_repeats
    Column("source_id", Integer, nullable=False),  # the row's id there (the first, for repeats)
    Column("incident_id", Integer, nullable=False, index=True),
    Column("record", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("archived_at", Float, nullable=False),
    Index("uq_audit_archive_source_source_id", "source", "source_id", unique=True),
)

# The live settings some application reads, by key, with when one last did: the client reports
# the keys its code asked for, so an action that changes a setting nobody reads is refused
# rather than "fixing" a fault by changing nothing.
settings_read = Table(
    "settings_read",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("last_read_at", Float, nullable=False),
)
