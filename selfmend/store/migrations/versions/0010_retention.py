"""retention: sample rollups, the audit archive, /metrics counters, indexes to prune by age

Raw samples past their retention are folded into minute and hour aggregates; executions of
incidents closed long ago move to the audit archive; /metrics reads its counters from a summary
instead of a GROUP BY over the whole log; anomalies and breaker events get an index on their
time, so the retention stage deletes the oldest in bounded batches without a scan.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sample_rollups",
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("resolution", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.Float(), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=False),
        sa.Column("max_value", sa.Float(), nullable=False),
        sa.Column("value_sum", sa.Float(), nullable=False),
        sa.Column("value_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "series_id", "resolution", "bucket", name=op.f("pk_sample_rollups")
        ),
    )
    op.create_index(
        "ix_sample_rollups_resolution_bucket", "sample_rollups", ["resolution", "bucket"]
    )
    op.create_table(
        "step_counts",
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("action", "state", name=op.f("pk_step_counts")),
    )
    op.create_table(
        "summary_cursors",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_summary_cursors")),
    )
    op.create_table(
        "audit_archive",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("archived_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_archive")),
    )
    op.create_index("ix_audit_archive_incident_id", "audit_archive", ["incident_id"])
    op.create_index(
        "uq_audit_archive_source_source_id", "audit_archive", ["source", "source_id"], unique=True
    )
    op.create_index("ix_anomalies_ts", "anomalies", ["ts"])
    op.create_index("ix_breaker_events_created_at", "breaker_events", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_breaker_events_created_at", table_name="breaker_events")
    op.drop_index("ix_anomalies_ts", table_name="anomalies")
    op.drop_index("uq_audit_archive_source_source_id", table_name="audit_archive")
    op.drop_index("ix_audit_archive_incident_id", table_name="audit_archive")
    op.drop_table("audit_archive")
    op.drop_table("summary_cursors")
    op.drop_table("step_counts")
    op.drop_index("ix_sample_rollups_resolution_bucket", table_name="sample_rollups")
    op.drop_table("sample_rollups")
