"""master_core's public HTTP contract."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from services.agent_core.schemas import SESSION_ID_PATTERN, TurnUsage


class ChatRequest(BaseModel):
    session_id: str | None = Field(
        None, pattern=SESSION_ID_PATTERN, description="Continue this session; omit to start one"
    )
    message: str = Field(min_length=1, description="What the user says")


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
