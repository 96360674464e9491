"""write_heals: the resilient writer: learned healing rules, and a log entry per healed row

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 21:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "write_heal_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("database", sa.String(length=200), nullable=False),
        sa.Column("table_name", sa.String(length=200), nullable=False),
        sa.Column("source_key", sa.String(length=200), nullable=False),
        sa.Column("column_name", sa.String(length=200), nullable=False),
        sa.Column("learned", sa.Boolean(), nullable=False),
        sa.Column("learned_by", sa.String(length=200), nullable=True),
        sa.Column("model_seen", sa.Integer(), nullable=False),
        sa.Column("rejected_at", sa.Float(), nullable=True),
        sa.Column("rejected_by", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_write_heal_rules")),
    )
    with op.batch_alter_table("write_heal_rules", schema=None) as batch_op:
        batch_op.create_index(
            "uq_write_heal_rules_mapping",
            ["database", "table_name", "source_key", "column_name"],
            unique=True,
        )
        batch_op.create_index(
            batch_op.f("ix_write_heal_rules_updated_at"), ["updated_at"], unique=False
        )
    op.create_table(
        "write_heals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("database", sa.String(length=200), nullable=False),
        sa.Column("table_name", sa.String(length=200), nullable=False),
        sa.Column("operation", sa.String(length=20), nullable=False),
        sa.Column("sent", sa.JSON(), nullable=False),
        sa.Column("written", sa.JSON(), nullable=False),
        sa.Column("heals", sa.JSON(), nullable=False),
        sa.Column("row_key", sa.JSON(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("rolled_back_at", sa.Float(), nullable=True),
        sa.Column("rolled_back_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_write_heals")),
    )
    with op.batch_alter_table("write_heals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_write_heals_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("write_heals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_write_heals_created_at"))
    op.drop_table("write_heals")
    with op.batch_alter_table("write_heal_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_write_heal_rules_updated_at"))
        batch_op.drop_index("uq_write_heal_rules_mapping")
    op.drop_table("write_heal_rules")
