"""series pages keep room for updated rows

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 18:40:00

Every analyze pass rewrites every series' detector state (about 1.6 KB). With free room on the
page, PostgreSQL writes the new row version beside the old one and leaves the series' indexes
alone (a heap-only update): a third of the time of a pass's save. SQLite has no such setting.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE series SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE series RESET (fillfactor)")
