"""control_changes: who changed a live setting or a kill switch, from what to what

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 16:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "control_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("old", sa.JSON(), nullable=True),
        sa.Column("new", sa.JSON(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_control_changes")),
    )
    op.create_index(
        "ix_control_changes_key_created_at", "control_changes", ["key", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_control_changes_key_created_at", table_name="control_changes")
    op.drop_table("control_changes")
