"""executions: indexes that end in created_at, for the reads every claim makes

The per-hour cap counts ``applying`` rows of the last hour, and the cooldown reads when an
action last ran on a target. Without ``created_at`` in an index the first scanned the whole
log, which only grows, and the second sorted its matches.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:20:00
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_index("ix_executions_action_target_state")
        batch_op.create_index(
            "ix_executions_action_target_state_created_at",
            ["action", "target", "state", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_executions_state_created_at", ["state", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_index("ix_executions_state_created_at")
        batch_op.drop_index("ix_executions_action_target_state_created_at")
        batch_op.create_index(
            "ix_executions_action_target_state", ["action", "target", "state"], unique=False
        )
