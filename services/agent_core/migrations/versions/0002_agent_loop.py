"""agent loop: stop reason, iterations and tool calls per turn; the turn trace

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.add_column(sa.Column("stop_reason", sa.String(32), nullable=True))
        batch.add_column(sa.Column("iterations", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("tool_calls", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "turn_steps",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("turn_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("started_ms", sa.Float(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
    )
    op.create_index("ix_turn_steps_turn_id", "turn_steps", ["turn_id"])


def downgrade() -> None:
    op.drop_table("turn_steps")
    with op.batch_alter_table("turns") as batch:
        for name in ("tool_calls", "iterations", "stop_reason"):
            batch.drop_column(name)
