"""The providers slice's HTTP contract: OpenAI-compatible chat completions and the ledger."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SESSION_HEADER = "X-Session-ID"
API_KEY_ID_HEADER = "X-API-Key-ID"
MAX_PRICE_HEADER = "X-Route-Max-Price-USD"


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


# -- a completion as the providers slice answers it (OpenAI's shape, OpenRouter's fields) ----
#
# Callers on the hot path get these, validated straight from the response bytes. Every model
# allows extra fields: OpenRouter adds some (provider, reasoning, native_finish_reason, ...)
# and an unknown one must never fail a paid-for answer.


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field("", description="The tool the model calls")
    arguments: str = Field(
        "", description="The arguments as the model wrote them: JSON text, not yet checked"
    )

    @field_validator("name", mode="before")
    @classmethod
    def _no_name(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("arguments", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        # Some upstreams send an object instead of the JSON text OpenAI specifies.
        if value is None:
            return ""
        return value if isinstance(value, str) else json.dumps(value)


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = Field(None, description="Quoted back by the tool message answering it")
    type: str = Field("function", description="Always function today")
    function: FunctionCall = Field(default_factory=FunctionCall)


class CompletionMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str = Field("assistant", description="assistant")
    content: str | None = Field(None, description="The text; none when it only calls tools")
    tool_calls: list[ToolCall] = Field(
        default_factory=list, description="Tools the model wants run before it answers"
    )

    @field_validator("tool_calls", mode="before")
    @classmethod
    def _no_calls(cls, value: Any) -> Any:
        return [] if value is None else value


class Choice(BaseModel):
    model_config = ConfigDict(extra="allow")
    index: int = 0
    message: CompletionMessage = Field(default_factory=CompletionMessage)
    finish_reason: str | None = Field(None, description="stop, tool_calls, length, error, ...")


class CompletionUsage(BaseModel):
    model_config = ConfigDict(extra="allow")
    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)
    total_tokens: int = Field(0, ge=0)
    cost: float = Field(0.0, description="What the call cost, in USD (OpenRouter's figure)")

    @field_validator("prompt_tokens", "completion_tokens", "total_tokens", "cost", mode="before")
    @classmethod
    def _none_is_zero(cls, value: Any) -> Any:
        return 0 if value is None else value


class ChatCompletion(BaseModel):
    """A ``chat.completion``: what ``POST /v1/chat/completions`` answers (and what a
    streamed answer adds up to)."""

    model_config = ConfigDict(extra="allow")
    id: str | None = Field(None, description="The upstream's generation id")
    object: str = "chat.completion"
    created: int | None = None
    model: str | None = Field(None, description="The model that answered (after routing)")
    provider: str | None = Field(None, description="OpenRouter's provider, when it says")
    choices: list[Choice] = Field(default_factory=list)
    usage: CompletionUsage = Field(default_factory=CompletionUsage)

    @field_validator("usage", mode="before")
    @classmethod
    def _no_usage(cls, value: Any) -> Any:
        return {} if value is None else value


class FunctionCallDelta(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str | None = None
    arguments: str | None = Field(None, description="The next piece of the arguments' text")


class ToolCallDelta(BaseModel):
    model_config = ConfigDict(extra="allow")
    index: int | None = Field(None, description="Which call of the message this piece is of")
    id: str | None = None
    type: str | None = None
    function: FunctionCallDelta | None = None


class Delta(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str | None = None
    content: str | None = Field(None, description="The next piece of text")
    tool_calls: list[ToolCallDelta] | None = None


class ChunkChoice(BaseModel):
    model_config = ConfigDict(extra="allow")
    index: int = 0
    delta: Delta = Field(default_factory=Delta)
    finish_reason: str | None = None


class ChatCompletionChunk(BaseModel):
    """One ``chat.completion.chunk`` of a streamed answer (a Server-Sent Event's data).
    The last one carries ``usage`` and no choices; a mid-stream failure carries ``error``."""

    model_config = ConfigDict(extra="allow")
    id: str | None = None
    created: int | None = None
    model: str | None = None
    provider: str | None = None
    choices: list[ChunkChoice] = Field(default_factory=list)
    usage: CompletionUsage | None = None
    error: dict[str, Any] | None = Field(None, description="OpenRouter's mid-stream error")


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
    cached_tokens: int
    reasoning_tokens: int
    cost_usd: float
    cost_source: str
    latency_ms: float
    ttft_ms: float | None
    streamed: bool
    attempts: int
    route_reason: str | None
    outcome: str
    error: str | None


class UsagesPublic(BaseModel):
    data: list[UsagePublic]
    count: int = Field(description="Records matching the filter")
    total_cost_usd: float
    total_tokens: int


BudgetScope = Literal["global", "slice", "api_key"]
BudgetWindowName = Literal["daily", "monthly", "total"]
MAX_BUDGET_USD = 1_000_000.0


class BudgetCreate(BaseModel):
    scope: BudgetScope = Field(description="global, one calling slice, or one API key")
    subject: str | None = Field(
        None,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="The slice name or API key id; none for global",
    )
    window: BudgetWindowName = Field(description="daily and monthly reset at 00:00 UTC")
    limit_usd: float = Field(ge=0, le=MAX_BUDGET_USD, description="Most that may be spent")

    @model_validator(mode="after")
    def _subject_matches_scope(self) -> BudgetCreate:
        if self.scope == "global" and self.subject:
            raise ValueError("a global budget has no subject")
        if self.scope != "global" and not self.subject:
            raise ValueError(f"a {self.scope} budget needs a subject")
        return self


class BudgetUpdate(BaseModel):
    limit_usd: float = Field(ge=0, le=MAX_BUDGET_USD)


class BudgetPublic(BaseModel):
    id: str
    scope: BudgetScope
    subject: str | None
    window: BudgetWindowName
    limit_usd: float
    window_start: datetime = Field(description="Start of the current window (UTC)")
    spent_usd: float = Field(description="Settled spend in the current window")
    reserved_usd: float = Field(description="Held for calls in flight")
    remaining_usd: float
    created_at: datetime


class BudgetsPublic(BaseModel):
    data: list[BudgetPublic]
    count: int


ReportGroup = Literal["model", "caller", "api_key", "day"]


class SpendRow(BaseModel):
    key: str | None = Field(description="The model, calling slice, key id or day")
    calls: int
    errors: int = Field(description="Calls that did not succeed (incl. refused by a budget)")
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class SpendReport(BaseModel):
    group_by: ReportGroup
    since: datetime | None
    until: datetime | None
    rows: list[SpendRow] = Field(description="Most expensive first")
    total_cost_usd: float


class ModelPublic(BaseModel):
    """OpenAI's model object plus OpenRouter's catalog fields."""

    model_config = ConfigDict(extra="allow")
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    name: str | None = None
    context_length: int | None = None
    pricing: dict[str, str] | None = Field(None, description="USD per token, as strings")
    supported_parameters: list[str] | None = None


class ModelsPublic(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelPublic]
    source: str = Field(description="snapshot (shipped) or upstream (refreshed)")
    updated_at: datetime | None


class ModelsRefreshed(BaseModel):
    count: int
    source: str
    updated_at: datetime | None


UPSTREAM_NAME = r"^[a-z][a-z0-9_-]{0,63}$"


class UpstreamCreate(BaseModel):
    name: str = Field(pattern=UPSTREAM_NAME, description="e.g. ollama")
    base_url: str = Field(
        max_length=500,
        pattern=r"^https?://[^\s]+$",
        description="OpenAI-compatible base, e.g. http://127.0.0.1:11434/v1",
    )
    api_key: str | None = Field(None, max_length=500, description="Stored, never returned")
    model_prefixes: list[str] = Field(
        min_length=1,
        max_length=50,
        description="Models whose id starts with one of these go here, e.g. ['ollama/']",
    )
    enabled: bool = True


class UpstreamUpdate(BaseModel):
    base_url: str | None = Field(None, max_length=500, pattern=r"^https?://[^\s]+$")
    api_key: str | None = Field(None, max_length=500, description="Replace the stored key")
    model_prefixes: list[str] | None = Field(None, min_length=1, max_length=50)
    enabled: bool | None = None


class UpstreamPublic(BaseModel):
    name: str
    base_url: str
    has_api_key: bool = Field(description="The key itself is never returned")
    api_key_hint: str | None = Field(description="Its last four characters")
    model_prefixes: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime


class UpstreamsPublic(BaseModel):
    data: list[UpstreamPublic]
    count: int
