"""The memory slice's tables: memories, consolidation runs and their cursors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class MemoryBase(SQLModel, registry=registry()):
    """Own registry: this slice's metadata holds only its own tables."""


class Memory(MemoryBase, table=True):
    __tablename__ = "memories"
    __table_args__ = (Index("ix_memories_scope_subject", "scope", "subject"),)

    id: str = Field(primary_key=True, max_length=32)
    scope: str = Field(max_length=16, description="user | session | global")
    subject: str = Field(default="", max_length=128, description="The user or session id")
    scope_key: str = Field(
        default="", max_length=200, description="Search tokens for scope, subject and owner"
    )
    owner: str | None = Field(default=None, max_length=64, index=True, description="API key id")
    text: str = Field(sa_column=Column(Text, nullable=False))
    kind: str = Field(default="note", max_length=16, description="fact, preference, decision...")
    importance: float = 0.5
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    source_session: str | None = Field(default=None, max_length=64)
    source_message: int | None = Field(default=None, description="seq of the source message")
    mentions: int = Field(default=1, description="Times it was stated (merges add up)")
    created_at: datetime
    updated_at: datetime


class ConsolidationRun(MemoryBase, table=True):
    __tablename__ = "consolidation_runs"

    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime = Field(index=True)
    finished_at: datetime | None = None
    session_id: str = Field(max_length=64, index=True)
    status: str = Field(max_length=16, description="ok | failed | nothing_new")
    from_seq: int = 0
    to_seq: int = 0
    model: str | None = Field(default=None, max_length=200)
    prompt: str = Field(default="", sa_column=Column(Text, nullable=False))
    output: str = Field(default="", sa_column=Column(Text, nullable=False))
    created: int = 0
    merged: int = 0
    cost_usd: float = 0.0
    error: str | None = Field(default=None, max_length=1_000)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ConsolidationCursor(MemoryBase, table=True):
    """How far a session's history has been consolidated."""

    __tablename__ = "consolidation_cursors"

    session_id: str = Field(primary_key=True, max_length=64)
    last_seq: int = 0
    updated_at: datetime
