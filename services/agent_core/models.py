"""The agent_core slice's tables: one row per turn."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class AgentBase(SQLModel, registry=registry()):
    """Own registry: this slice's metadata holds only its own tables."""


class Turn(AgentBase, table=True):
    __tablename__ = "turns"

    id: str = Field(primary_key=True, max_length=32)
    session_id: str = Field(max_length=64, index=True)
    created_at: datetime = Field(index=True)
    model: str | None = Field(default=None, max_length=200)
    history_messages: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    outcome: str = Field(max_length=32, description="ok or an error code")
    error: str | None = Field(default=None, max_length=500)
