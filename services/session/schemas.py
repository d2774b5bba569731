"""The session slice's HTTP contract."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

Role = Literal["system", "user", "assistant", "tool"]
SESSION_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
IDEMPOTENCY_HEADER = "Idempotency-Key"
CHANNEL_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
MAX_APPEND = 100


class SessionCreate(BaseModel):
    id: str | None = Field(
        None,
        pattern=SESSION_ID_PATTERN,
        description="Choose the id; a random one is made if omitted",
    )
    title: str | None = Field(None, max_length=200)
    channel: str = Field("rest", pattern=CHANNEL_PATTERN, description="Where it lives")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Free-form, small")


class SessionResolve(BaseModel):
    """The session of a channel's user or chat: found, or created on first contact."""

    channel: str = Field(pattern=CHANNEL_PATTERN, description="e.g. telegram, discord")
    external_id: str = Field(min_length=1, max_length=128, description="The channel's chat id")
    title: str | None = Field(None, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)


class SessionTrimmed(BaseModel):
    session_id: str
    archived: int = Field(description="Messages archived by this trim")
    archived_total: int
    live: int = Field(description="Messages left in the live history")


class SessionPublic(BaseModel):
    id: str
    title: str | None
    channel: str
    external_id: str | None = None
    owner: str | None = Field(None, description="The API key id that owns it")
    created_at: datetime
    last_active_at: datetime
    message_count: int
    archived_count: int = 0
    metadata: dict[str, Any]


class SessionsPublic(BaseModel):
    data: list[SessionPublic]
    count: int = Field(description="Sessions in total")


class ToolCall(BaseModel):
    id: str = Field(max_length=128)
    type: Literal["function"] = "function"
    function: dict[str, Any]


class MessageCreate(BaseModel):
    role: Role
    content: str | None = Field(None, description="Text; may be empty for tool-calling turns")
    name: str | None = Field(None, max_length=64)
    tool_call_id: str | None = Field(None, max_length=128, description="For role 'tool'")
    tool_calls: list[ToolCall] | None = Field(None, description="For role 'assistant'")

    @model_validator(mode="after")
    def _check_role_fields(self) -> MessageCreate:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id")
        if self.role != "tool" and self.tool_call_id:
            raise ValueError("tool_call_id is only for role 'tool'")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("tool_calls is only for role 'assistant'")
        if self.content is None and not self.tool_calls:
            raise ValueError("content is required unless the message carries tool_calls")
        return self


class MessagesAppend(BaseModel):
    messages: list[MessageCreate] = Field(
        min_length=1, max_length=MAX_APPEND, description="Stored in this order, atomically"
    )


class MessagePublic(BaseModel):
    id: int
    session_id: str
    seq: int
    role: Role
    content: str | None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    created_at: datetime
    archived: bool = False


class MessagesPublic(BaseModel):
    data: list[MessagePublic]
    count: int = Field(description="Messages in the session in total")


class SearchHit(BaseModel):
    message: MessagePublic
    score: float = Field(description="Relevance (BM25 on SQLite; higher is better)")
    snippet: str


class SearchResults(BaseModel):
    query: str
    data: list[SearchHit]
