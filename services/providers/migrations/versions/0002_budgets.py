"""budgets, their windows and reservations

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("window", sa.String(16), nullable=False),
        sa.Column("limit_nusd", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("scope", "subject", "window", name="uq_budget_target"),
    )
    op.create_table(
        "budget_windows",
        sa.Column("budget_id", sa.String(32), sa.ForeignKey("budgets.id"), primary_key=True),
        sa.Column("window_start", sa.DateTime(), primary_key=True),
        sa.Column("spent_nusd", sa.BigInteger(), nullable=False),
        sa.Column("reserved_nusd", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "budget_reservations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("amount_nusd", sa.BigInteger(), nullable=False),
        sa.Column("windows", sa.JSON(), nullable=False),
    )
    op.create_index("ix_budget_reservations_created_at", "budget_reservations", ["created_at"])


def downgrade() -> None:
    op.drop_table("budget_reservations")
    op.drop_table("budget_windows")
    op.drop_table("budgets")
