"""The providers slice's HTTP contract: OpenAI-compatible chat completions and the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SESSION_HEADER = "X-Session-ID"
API_KEY_ID_HEADER = "X-API-Key-ID"


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: Any = None


class ChatCompletionRequest(BaseModel):
    """OpenAI's request shape; fields we do not inspect pass through to the upstream."""

    model_config = ConfigDict(extra="allow")
    model: str | None = Field(None, max_length=200, description="Model id, e.g. openai/gpt-4o")
    messages: list[ChatMessage] = Field(min_length=1, max_length=10_000)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    stream: bool = False


class UsagePublic(BaseModel):
    id: int
    created_at: datetime
    request_id: str | None
    caller: str | None
    session_id: str | None
    api_key_id: str | None
    requested_model: str | None
    model: str | None
    generation_id: str | None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float
    cost_source: str
    latency_ms: float
    outcome: str
    error: str | None


class UsagesPublic(BaseModel):
    data: list[UsagePublic]
    count: int = Field(description="Records matching the filter")
    total_cost_usd: float
    total_tokens: int
