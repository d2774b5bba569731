"""memories with full-text search, consolidation runs and cursors

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FTS = [
    "CREATE VIRTUAL TABLE memories_fts USING fts5(text, tags, scope_key, content='memories', "
    "content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER memories_fts_ai AFTER INSERT ON memories BEGIN "
    "INSERT INTO memories_fts(rowid, text, tags, scope_key) "
    "VALUES (new.rowid, new.text, new.tags, new.scope_key); END",
    "CREATE TRIGGER memories_fts_ad AFTER DELETE ON memories BEGIN "
    "INSERT INTO memories_fts(memories_fts, rowid, text, tags, scope_key) "
    "VALUES ('delete', old.rowid, old.text, old.tags, old.scope_key); END",
    "CREATE TRIGGER memories_fts_au AFTER UPDATE OF text, tags, scope_key ON memories BEGIN "
    "INSERT INTO memories_fts(memories_fts, rowid, text, tags, scope_key) "
    "VALUES ('delete', old.rowid, old.text, old.tags, old.scope_key); "
    "INSERT INTO memories_fts(rowid, text, tags, scope_key) "
    "VALUES (new.rowid, new.text, new.tags, new.scope_key); END",
]


def upgrade() -> None:
    op.create_table(
        "memories",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("scope_key", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("importance", sa.Float(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("source_session", sa.String(64), nullable=True),
        sa.Column("source_message", sa.Integer(), nullable=True),
        sa.Column("mentions", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_memories_scope_subject", "memories", ["scope", "subject"])
    op.create_index("ix_memories_owner", "memories", ["owner"])
    op.create_table(
        "consolidation_runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("from_seq", sa.Integer(), nullable=False),
        sa.Column("to_seq", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("merged", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("error", sa.String(1000), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
    )
    op.create_index("ix_consolidation_runs_started_at", "consolidation_runs", ["started_at"])
    op.create_index("ix_consolidation_runs_session_id", "consolidation_runs", ["session_id"])
    op.create_table(
        "consolidation_cursors",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        for statement in FTS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("memories_fts_au", "memories_fts_ad", "memories_fts_ai"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS memories_fts")
    op.drop_table("consolidation_cursors")
    op.drop_table("consolidation_runs")
    op.drop_table("memories")
