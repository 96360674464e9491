"""push batches: digests of the pushed batches already stored, so each is stored once

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 20:35:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "push_batches",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("stored_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_push_batches")),
    )
    with op.batch_alter_table("push_batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_push_batches_stored_at"), ["stored_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("push_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_push_batches_stored_at"))
    op.drop_table("push_batches")
