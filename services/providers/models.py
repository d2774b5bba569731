"""The providers slice's tables: the usage ledger."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class ProvidersBase(SQLModel, registry=registry()):
    """Own registry: this slice's metadata holds only its own tables."""


class UsageRecord(ProvidersBase, table=True):
    """One row per upstream call, successful or not."""

    __tablename__ = "usage_records"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(index=True)
    request_id: str | None = Field(default=None, max_length=128)
    caller: str | None = Field(default=None, max_length=64, description="Calling service")
    session_id: str | None = Field(default=None, max_length=64, index=True)
    api_key_id: str | None = Field(default=None, max_length=64)
    requested_model: str | None = Field(default=None, max_length=200)
    model: str | None = Field(default=None, max_length=200, description="Model that answered")
    generation_id: str | None = Field(default=None, max_length=128)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    cost_source: str = Field(default="none", max_length=16, description="upstream|catalog|none")
    latency_ms: float = 0.0
    outcome: str = Field(max_length=32, description="ok or an error code")
    error: str | None = Field(default=None, max_length=500)
