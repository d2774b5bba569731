"""The agent_core slice's HTTP contract."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

SESSION_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"


class TurnCreate(BaseModel):
    session_id: str | None = Field(
        None, pattern=SESSION_ID_PATTERN, description="Continue this session; a new one if omitted"
    )
    message: str = Field(min_length=1, description="The user's message")
    api_key_id: str | None = Field(None, max_length=64, description="Who pays, for the ledger")


class TurnUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float


class TurnPublic(BaseModel):
    turn_id: str
    session_id: str
    reply: str
    model: str
    usage: TurnUsage
    latency_ms: float


class TurnRecordPublic(BaseModel):
    id: str
    session_id: str
    created_at: datetime
    model: str | None
    history_messages: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: float
    outcome: str
    error: str | None


class TurnRecordsPublic(BaseModel):
    data: list[TurnRecordPublic]
    count: int
