"""master_core's public HTTP contract."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.agent_core.schemas import SESSION_ID_PATTERN, HistoryMessage, TurnUsage


class ChatRequest(BaseModel):
    session_id: str | None = Field(
        None, pattern=SESSION_ID_PATTERN, description="Continue this session; omit to start one"
    )
    message: str = Field(min_length=1, description="What the user says")
    stream: bool = Field(False, description="Answer with Server-Sent Events of the turn's progress")


class ChatResponse(BaseModel):
    session_id: str = Field(description="Pass it back to continue the conversation")
    reply: str
    model: str = Field(description="The model that answered")
    usage: TurnUsage
    turn_id: str


class ServiceHealth(BaseModel):
    ok: bool
    url: str
    status: dict[str, Any] | None = Field(None, description="The service's /status")
    error: str | None = None


class FleetStatus(BaseModel):
    ok: bool = Field(description="Every service answered")
    services: dict[str, ServiceHealth]


class KeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    admin: bool = False


class KeyCreated(BaseModel):
    id: str
    name: str
    admin: bool
    key: str = Field(description="Shown once; only its hash is stored")


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class AgentMessage(HistoryMessage):
    """A chat completions message; text content parts are joined."""

    content: str | list[ContentPart] | None = Field(None)  # type: ignore[assignment]

    def text(self) -> str | None:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content


class AgentCompletionRequest(BaseModel):
    """OpenAI's request shape. The last message (the user's) is the turn's input; the ones
    before it are the history. ``model`` is informational: the agent's model answers."""

    model_config = ConfigDict(extra="allow")
    model: str | None = Field(None, max_length=200)
    messages: list[AgentMessage] = Field(min_length=1, max_length=1_000)
    stream: bool = False
