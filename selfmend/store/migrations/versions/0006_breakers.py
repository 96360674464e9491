"""breakers: circuit breakers: shared state for the embedded default, and every transition

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 21:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "breakers",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("since", sa.Float(), nullable=False),
        sa.Column("probes", sa.Integer(), nullable=False),
        sa.Column("successes", sa.Integer(), nullable=False),
        sa.Column("base_settings", sa.JSON(), nullable=True),
        sa.Column("overrides", sa.JSON(), nullable=False),
        sa.Column("settings_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_breakers")),
    )
    op.create_table(
        "breaker_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("breaker", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Boolean(), nullable=False),
        sa.Column("process", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_breaker_calls")),
    )
    op.create_index(
        "ix_breaker_calls_breaker_version_id", "breaker_calls", ["breaker", "version", "id"]
    )
    op.create_table(
        "breaker_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("breaker", sa.String(length=200), nullable=False),
        sa.Column("from_state", sa.String(length=20), nullable=False),
        sa.Column("to_state", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("process", sa.String(length=200), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_breaker_events")),
    )
    op.create_index(
        "ix_breaker_events_breaker_created_at", "breaker_events", ["breaker", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_breaker_events_breaker_created_at", table_name="breaker_events")
    op.drop_table("breaker_events")
    op.drop_index("ix_breaker_calls_breaker_version_id", table_name="breaker_calls")
    op.drop_table("breaker_calls")
    op.drop_table("breakers")
