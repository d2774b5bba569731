"""The agent_core slice's HTTP contract."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SESSION_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"


HISTORY_CONTENT_MAX_CHARS = 200_000  # the longest history message a caller may send


class HistoryMessage(BaseModel):
    """A message of a history given by the caller, in chat completions' shape."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = Field(None, max_length=HISTORY_CONTENT_MAX_CHARS)
    tool_calls: list[dict[str, Any]] | None = Field(None, max_length=64)
    tool_call_id: str | None = Field(None, max_length=128)
    name: str | None = Field(None, max_length=64)


class TurnCreate(BaseModel):
    session_id: str | None = Field(
        None, pattern=SESSION_ID_PATTERN, description="Continue this session; a new one if omitted"
    )
    message: str = Field(min_length=1, description="The user's message")
    api_key_id: str | None = Field(None, max_length=64, description="Who pays, for the ledger")
    stream: bool = Field(False, description="Answer with Server-Sent Events of the progress")
    messages: list[HistoryMessage] | None = Field(
        None,
        max_length=1_000,
        description="Use this history instead of the session's (OpenAI-style clients)",
    )


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
    stop_reason: str = Field(
        description="final_answer, or the bound that stopped the turn: max_iterations, "
        "token_budget, cost_budget, deadline"
    )
    iterations: int = Field(description="LLM calls in the loop")
    tool_calls: int


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
    stop_reason: str | None
    iterations: int
    tool_calls: int


class TurnRecordsPublic(BaseModel):
    data: list[TurnRecordPublic]
    count: int


class StepPublic(BaseModel):
    seq: int
    kind: str = Field(description="plan, llm, tool, reflection, tools, stop")
    name: str | None
    outcome: str
    detail: dict[str, Any]
    tokens: int
    cost_usd: float
    started_ms: float
    duration_ms: float


class TurnDetail(BaseModel):
    turn: TurnRecordPublic
    steps: list[StepPublic]
