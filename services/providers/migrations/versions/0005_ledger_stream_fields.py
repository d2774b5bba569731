"""ledger: cached and reasoning tokens, time to first token, streamed, attempts, route reason

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(
            sa.Column("cached_tokens", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("reasoning_tokens", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("ttft_ms", sa.Float(), nullable=True))
        batch.add_column(sa.Column("streamed", sa.Boolean(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("route_reason", sa.String(300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        for name in (
            "route_reason",
            "attempts",
            "streamed",
            "ttft_ms",
            "reasoning_tokens",
            "cached_tokens",
        ):
            batch.drop_column(name)
