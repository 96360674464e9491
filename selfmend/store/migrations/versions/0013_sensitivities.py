"""sensitivities: a series' sensitivity, who set it, why and when; control_changes keys as long as
series keys, for the audit rows of those changes

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-10 09:00:00

Lengthening a varchar changes only the catalogue on PostgreSQL (no rewrite, the index stays);
SQLite copies the table, as it does for any column change.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sensitivities",
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("sensitivity", sa.Float(), nullable=False),
        sa.Column("set_by", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("set_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_id"], ["series.id"], name=op.f("fk_sensitivities_series_id_series")
        ),
        sa.PrimaryKeyConstraint("series_id", name=op.f("pk_sensitivities")),
    )
    with op.batch_alter_table("control_changes") as batch:
        batch.alter_column(
            "key",
            existing_type=sa.String(length=200),
            type_=sa.String(length=400),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("control_changes") as batch:
        batch.alter_column(
            "key",
            existing_type=sa.String(length=400),
            type_=sa.String(length=200),
            existing_nullable=False,
        )
    op.drop_table("sensitivities")
