"""sessions: owner and channel id; messages: archived, full-text index; idempotent appends

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

FTS = [
    "CREATE VIRTUAL TABLE messages_fts USING fts5("
    "content, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN "
    "INSERT INTO messages_fts(rowid, content) VALUES (new.id, coalesce(new.content, '')); END",
    "CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, content) "
    "VALUES ('delete', old.id, coalesce(old.content, '')); END",
    "CREATE TRIGGER messages_fts_au AFTER UPDATE OF content ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, content) "
    "VALUES ('delete', old.id, coalesce(old.content, '')); "
    "INSERT INTO messages_fts(rowid, content) VALUES (new.id, coalesce(new.content, '')); END",
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
]


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("external_id", sa.String(128), nullable=True))
        batch.add_column(
            sa.Column("archived_count", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_index("ix_sessions_owner", "sessions", ["owner"])
    op.create_index(
        "uq_sessions_channel_external", "sessions", ["channel", "external_id"], unique=True
    )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("archived", sa.Boolean(), nullable=False, server_default="0"))
    op.create_table(
        "append_keys",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        for statement in FTS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("messages_fts_au", "messages_fts_ad", "messages_fts_ai"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS messages_fts")
    op.drop_table("append_keys")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("archived")
    op.drop_index("uq_sessions_channel_external", "sessions")
    op.drop_index("ix_sessions_owner", "sessions")
    with op.batch_alter_table("sessions") as batch:
        for name in ("archived_count", "external_id", "owner"):
            batch.drop_column(name)
