"""settings_read: the live settings an application reads, and when one last did

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-09 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settings_read",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("last_read_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings_read")),
    )


def downgrade() -> None:
    op.drop_table("settings_read")
