"""The providers slice's tables: the usage ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint
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
    cached_tokens: int = Field(default=0, description="Prompt tokens read from the cache")
    reasoning_tokens: int = Field(default=0, description="Completion tokens spent reasoning")
    cost_usd: float = 0.0
    cost_source: str = Field(default="none", max_length=16, description="upstream|catalog|none")
    latency_ms: float = 0.0
    ttft_ms: float | None = Field(
        default=None, description="Time to first token; for a call not streamed, its latency"
    )
    streamed: bool = False
    attempts: int = Field(default=1, description="Upstream attempts (retries + 1)")
    route_reason: str | None = Field(
        default=None, max_length=300, description="Why model auto chose the model"
    )
    outcome: str = Field(max_length=32, description="ok or an error code")
    error: str | None = Field(default=None, max_length=500)


class Budget(ProvidersBase, table=True):
    """A spending limit for everyone (global), one calling slice, or one API key."""

    __tablename__ = "budgets"
    __table_args__ = (UniqueConstraint("scope", "subject", "window", name="uq_budget_target"),)

    id: str = Field(primary_key=True, max_length=32)
    scope: str = Field(max_length=16, description="global | slice | api_key")
    subject: str = Field(default="", max_length=64, description="slice name or key id")
    window: str = Field(max_length=16, description="daily | monthly | total")
    limit_nusd: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: datetime
    updated_at: datetime


class BudgetWindow(ProvidersBase, table=True):
    """Spent and reserved money of one budget in one window (nano-USD, exact)."""

    __tablename__ = "budget_windows"

    budget_id: str = Field(primary_key=True, foreign_key="budgets.id", max_length=32)
    window_start: datetime = Field(primary_key=True)
    spent_nusd: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    reserved_nusd: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class BudgetReservation(ProvidersBase, table=True):
    """Money held for a call in flight; settled after it, released if the call died."""

    __tablename__ = "budget_reservations"

    id: str = Field(primary_key=True, max_length=32)
    created_at: datetime = Field(index=True)
    amount_nusd: int = Field(sa_column=Column(BigInteger, nullable=False))
    windows: list[list[str]] = Field(
        sa_column=Column(JSON, nullable=False), description="[budget_id, window_start] pairs"
    )


class CatalogModel(ProvidersBase, table=True):
    """One model of the upstream's catalog (OpenRouter's GET /models item, kept whole)."""

    __tablename__ = "catalog_models"

    id: str = Field(primary_key=True, max_length=200)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    source: str = Field(max_length=16, description="snapshot | upstream")
    updated_at: datetime


class Upstream(ProvidersBase, table=True):
    """An extra OpenAI-compatible upstream (Ollama, vLLM, another OpenRouter account) that
    serves the models whose ids start with one of its prefixes."""

    __tablename__ = "upstreams"

    name: str = Field(primary_key=True, max_length=64)
    base_url: str = Field(max_length=500)
    api_key: str | None = Field(default=None, max_length=500, description="Never returned")
    model_prefixes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    enabled: bool = True
    created_at: datetime
    updated_at: datetime
