"""state shared by replicas: NATS leases and producer rate buckets

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
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
        "nats_leases",
        sa.Column("topic", sa.String(128), primary_key=True),
        sa.Column("group_name", sa.String(128), primary_key=True),
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("reply", sa.String(512), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=False),
    )
    op.create_index("ix_nats_leases_until", "nats_leases", ["lease_until"])
    op.create_table(
        "producer_buckets",
        sa.Column("producer", sa.String(64), primary_key=True),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("producer_buckets")
    op.drop_table("nats_leases")
