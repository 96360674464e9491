"""schema_versions: schema versions of the watched databases, and the changes between them

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 21:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schema_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("database", sa.String(length=200), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schema_versions")),
    )
    op.create_index(
        "uq_schema_versions_database_number",
        "schema_versions",
        ["database", "number"],
        unique=True,
    )
    op.create_table(
        "schema_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("table_name", sa.String(length=200), nullable=False),
        sa.Column("column_name", sa.String(length=200), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["schema_versions.id"],
            name=op.f("fk_schema_changes_version_id_schema_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schema_changes")),
    )
    op.create_index(
        op.f("ix_schema_changes_version_id"), "schema_changes", ["version_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_schema_changes_version_id"), table_name="schema_changes")
    op.drop_table("schema_changes")
    op.drop_index("uq_schema_versions_database_number", table_name="schema_versions")
    op.drop_table("schema_versions")
