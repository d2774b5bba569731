"""The tools slice's HTTP contract."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

TOOL_NAME = r"^[a-z][a-z0-9_]{0,63}$"
WORKSPACE_NAME = r"^[A-Za-z0-9_.-]{1,64}$"
MEMORY_TOOLS = frozenset({"remember", "recall"})
"""The tools that read and write memories (permission ``memory``): whose memories is the
call's ``owner`` (and ``session_id``), never anything in its arguments."""


class ToolPublic(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]
    version: str
    permission: str
    source: str
    enabled: bool = Field(description="Switched on by the operator")
    available: bool = Field(
        True, description="This service can run it (exec needs a sandbox, or exec_unsandboxed)"
    )
    unavailable_reason: str | None = Field(None, description="Why it is not available")
    timeout_s: float
    output_cap_bytes: int
    updated_at: datetime


class OpenAIFunction(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]


class OpenAITool(BaseModel):
    type: str = "function"
    function: OpenAIFunction


class ToolsPublic(BaseModel):
    data: list[ToolPublic] = Field(description="The registry: every tool, enabled or not")
    count: int
    tools: list[OpenAITool] = Field(
        description="The enabled, available tools as chat completions' tools list, for the agent"
    )


class ToolUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = None
    timeout_s: float | None = Field(None, gt=0, le=600)
    output_cap_bytes: int | None = Field(None, gt=0, le=16 * 1024 * 1024)


class OpenAIToolsPublic(BaseModel):
    """The enabled tools as chat completions' ``tools`` list."""

    tools: list[OpenAITool]


class ToolCallRequest(BaseModel):
    """One call. ``arguments`` are the model's; the other fields are the turn's context,
    set by the caller (the agent), never taken from the model."""

    model_config = ConfigDict(extra="forbid")
    arguments: dict[str, Any] = Field(default_factory=dict, description="Checked by the schema")
    workspace: str = Field("default", pattern=WORKSPACE_NAME, description="Where files are")
    session_id: str | None = Field(None, max_length=64, description="The conversation")
    turn_id: str | None = Field(None, max_length=64, description="The agent turn")
    owner: str | None = Field(
        None,
        max_length=64,
        description="The API key id the turn runs for: whose memories remember/recall use "
        "(none: the session's memories only)",
    )


class ToolCallResult(BaseModel):
    execution_id: int
    tool: str
    result: dict[str, Any]
    duration_ms: float


class ExecutionPublic(BaseModel):
    id: int
    created_at: datetime
    tool: str
    workspace: str
    arguments: str
    session_id: str | None
    turn_id: str | None
    caller: str | None
    request_id: str | None
    duration_ms: float
    outcome: str
    error: str | None
    bytes_out: int


class ExecutionsPublic(BaseModel):
    data: list[ExecutionPublic]
    count: int
