"""The tools slice's tables: the registry and the execution log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class ToolsBase(SQLModel, registry=registry()):
    """Own registry: this slice's metadata holds only its own tables."""


class ToolRecord(ToolsBase, table=True):
    """A registered tool. Built-ins are (re)registered at start-up; what an operator set
    (enabled, timeout, output cap) is kept across restarts."""

    __tablename__ = "tools"

    name: str = Field(primary_key=True, max_length=64)
    description: str = Field(max_length=2_000)
    parameters: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    version: str = Field(max_length=32)
    permission: str = Field(max_length=16, description="read | write | execute | network")
    source: str = Field(default="builtin", max_length=64)
    enabled: bool = True
    timeout_s: float
    output_cap_bytes: int
    created_at: datetime
    updated_at: datetime


class Execution(ToolsBase, table=True):
    """One tool call, whatever its outcome."""

    __tablename__ = "executions"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(index=True)
    tool: str = Field(max_length=64, index=True)
    workspace: str = Field(max_length=64)
    arguments: str = Field(description="JSON, secrets redacted, capped")
    session_id: str | None = Field(default=None, max_length=64, index=True)
    turn_id: str | None = Field(default=None, max_length=64)
    caller: str | None = Field(default=None, max_length=64)
    request_id: str | None = Field(default=None, max_length=128)
    duration_ms: float
    outcome: str = Field(max_length=32, description="ok or an error code")
    error: str | None = Field(default=None, max_length=1_000)
    bytes_out: int = 0
