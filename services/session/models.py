"""The session slice's tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class SessionBase(SQLModel, registry=registry()):
    """Own registry: this slice's metadata holds only its own tables."""


class ChatSession(SessionBase, table=True):
    __tablename__ = "sessions"
    __table_args__ = (Index("uq_sessions_channel_external", "channel", "external_id", unique=True),)

    id: str = Field(primary_key=True, max_length=64)
    title: str | None = Field(default=None, max_length=200)
    channel: str = Field(default="rest", max_length=32)
    created_at: datetime
    last_active_at: datetime = Field(index=True)
    message_count: int = Field(default=0)
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    owner: str | None = Field(default=None, max_length=64, index=True, description="API key id")
    external_id: str | None = Field(
        default=None, max_length=128, description="The channel's user or chat id"
    )
    archived_count: int = Field(default=0, description="Messages archived by retention")


class Message(SessionBase, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("session_id", "seq", name="uq_messages_session_seq"),
        Index("ix_messages_session_seq", "session_id", "seq"),
    )

    id: int | None = Field(default=None, primary_key=True)
    session_id: str = Field(foreign_key="sessions.id", max_length=64)
    seq: int = Field(description="1-based position in the session")
    role: str = Field(max_length=16)
    content: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    name: str | None = Field(default=None, max_length=64)
    tool_call_id: str | None = Field(default=None, max_length=128)
    tool_calls: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime
    archived: bool = Field(default=False, description="Kept, but out of the live history")


class AppendKey(SessionBase, table=True):
    """An idempotency key of an append: a retry with it returns what the first stored."""

    __tablename__ = "append_keys"

    session_id: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=128)
    first_seq: int
    count: int
    created_at: datetime
