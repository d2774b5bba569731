"""The agent_core slice's tables: one row per turn."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
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
    stop_reason: str | None = Field(
        default=None, max_length=32, description="final_answer, or the bound that stopped it"
    )
    iterations: int = 0
    tool_calls: int = 0


class TurnStep(AgentBase, table=True):
    """One step of a turn's trace: a plan, an LLM call, a tool call, a review, the stop."""

    __tablename__ = "turn_steps"

    id: int | None = Field(default=None, primary_key=True)
    turn_id: str = Field(max_length=32, index=True)
    seq: int
    kind: str = Field(max_length=16, description="plan | llm | tool | reflection | stop")
    name: str | None = Field(default=None, max_length=200)
    outcome: str = Field(default="ok", max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    tokens: int = 0
    cost_usd: float = 0.0
    started_ms: float = Field(default=0.0, description="Since the turn began")
    duration_ms: float = 0.0
