"""The AtomicSlice protocol every service implements, and the models it speaks in."""

from __future__ import annotations

import os
import time
from abc import ABC
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import MetaData, delete, func, insert, select
from sqlmodel import Session

from services.kit.client import ClientPool
from services.kit.config import Settings
from services.kit.database import SliceDatabase
from services.kit.kit_tables import feedback as feedback_table
from services.kit.manifest import SliceManifest, package_dir
from services.kit.metrics import ServiceMetrics

MAX_FEEDBACK = 1_000


@dataclass
class SliceContext:
    """Everything a slice is given at start-up; built by ``create_app``'s lifespan."""

    manifest: SliceManifest
    settings: Settings
    db: SliceDatabase
    pool: ClientPool
    metrics: ServiceMetrics
    started_at: float = field(default_factory=time.time)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.manifest.name


class SliceRequest(BaseModel):
    """A unit of work addressed to a slice, as passed between services."""

    operation: str = Field(description="What to do, e.g. 'messages.append'")
    payload: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = None
    caller: str | None = Field(None, description="The calling service")
    deadline_ms: int | None = Field(None, ge=0, description="Budget left for the work")


class SliceResponse(BaseModel):
    ok: bool
    data: Any = None
    error: str | None = None
    request_id: str | None = None


class SliceCapabilities(BaseModel):
    name: str
    version: str
    description: str
    capabilities: list[str] = Field(description="What the slice can do; empty if nothing yet")
    calls: list[str] = Field(description="Services it depends on")
    endpoints: list[str] = Field(description="Its domain routes, 'METHOD /path'")
    quotas: dict[str, int | float]


class DependencyStatus(BaseModel):
    ok: bool
    detail: str | None = None


class SliceStatus(BaseModel):
    name: str
    version: str
    healthy: bool
    pid: int
    started_at: datetime
    uptime_s: float
    requests_total: int
    errors_total: int
    in_flight: int
    database: str = Field(description="Database URL with any password hidden")
    details: dict[str, Any] = Field(default_factory=dict, description="Slice-specific figures")


class ImprovementFeedback(BaseModel):
    """An observation about a slice, from a user, an operator or another service."""

    source: str = Field(max_length=100, description="Who observed it")
    kind: Literal["error", "latency", "quality", "cost", "other"] = "other"
    message: str = Field(min_length=1, max_length=4_000)
    severity: Literal["low", "medium", "high"] = "medium"
    context: dict[str, Any] = Field(default_factory=dict)
    received_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class ImprovementAction(BaseModel):
    target: str = Field(description="Route or area concerned")
    problem: str
    suggestion: str
    priority: Literal["low", "medium", "high"]


class ImprovementPlan(BaseModel):
    slice: str
    generated_at: datetime
    actions: list[ImprovementAction]
    based_on: dict[str, int] = Field(description="How many requests and feedback items")


class AtomicSlice(ABC):
    """One vertical slice. Subclasses name themselves, add routers, tables and hooks.

    ``create_app(slice)`` turns an instance into a FastAPI service.
    """

    #: Package name, e.g. "session"; slice.yaml sits beside the subclass's module.
    name: str
    #: Whether domain routes require the shared internal token (master_core uses API keys).
    internal_auth: bool = True
    #: Latency above which the improvement plan flags a route.
    slow_route_s: float = 1.0

    def __init__(self) -> None:
        self.ctx: SliceContext | None = None

    @property
    def context(self) -> SliceContext:
        if self.ctx is None:
            raise RuntimeError(f"slice {self.name} is not started")
        return self.ctx

    # --- what the slice is made of ----------------------------------------------------------
    def routers(self) -> list[APIRouter]:
        """Domain routers, mounted under the app; routes live under /v1/."""
        return []

    def metadata(self) -> MetaData:
        """The slice's table metadata (its own SQLModel registry)."""
        return MetaData()

    def migrations_dir(self) -> Path:
        """Where this slice's Alembic versions live: ``<package>/migrations/versions``."""
        return package_dir(self.name) / "migrations" / "versions"

    # --- lifecycle ---------------------------------------------------------------------------
    async def startup(self, ctx: SliceContext) -> None:
        """Called once the database is migrated and the client pool exists."""
        self.ctx = ctx

    async def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Called before the pool and database close."""

    # --- what it reports ---------------------------------------------------------------------
    def capabilities(self, endpoints: list[str]) -> SliceCapabilities:
        m = self.context.manifest
        return SliceCapabilities(
            name=m.name,
            version=m.version,
            description=m.description,
            capabilities=list(m.capabilities),
            calls=list(m.calls),
            endpoints=endpoints,
            quotas=m.quotas.model_dump(),
        )

    async def status_details(self) -> dict[str, Any]:
        """Slice-specific figures for /status."""
        return {}

    async def status(self) -> SliceStatus:
        ctx = self.context
        m = ctx.metrics
        return SliceStatus(
            name=ctx.name,
            version=ctx.manifest.version,
            healthy=True,
            pid=os.getpid(),
            started_at=datetime.fromtimestamp(ctx.started_at, UTC),
            uptime_s=round(time.time() - ctx.started_at, 3),
            requests_total=m.requests_total,
            errors_total=m.errors_total,
            in_flight=int(m.in_flight._value.get()),
            database=ctx.db.safe_url,
            details=await self.status_details(),
        )

    # --- improvement hooks -------------------------------------------------------------------
    async def record_feedback(self, feedback: ImprovementFeedback) -> int:
        """Keep an observation for the next plan, in the slice's database so that every
        replica plans with it (bounded; oldest dropped first); how many are kept."""
        return await self.context.db.run(lambda s: _store_feedback(s, feedback))

    async def recent_feedback(self) -> list[ImprovementFeedback]:
        """The observations kept, oldest first, whichever replica received them."""
        return await self.context.db.run(_read_feedback, write=False)

    async def plan_improvement(self) -> ImprovementPlan:
        """A plan from what the slice measured (errors, slow routes) and the feedback it got."""
        ctx = self.context
        actions: list[ImprovementAction] = []
        counts: dict[tuple[str, str], list[float]] = {}
        for metric in ctx.metrics.requests.collect():
            for sample in metric.samples:
                if not sample.name.endswith("_total"):
                    continue
                key = (sample.labels["method"], sample.labels["route"])
                totals = counts.setdefault(key, [0.0, 0.0])
                totals[0] += sample.value
                if sample.labels["status"].startswith("5"):
                    totals[1] += sample.value
        for (method, route), (total, errors) in sorted(counts.items()):
            if total and errors / total > 0.01:
                actions.append(
                    ImprovementAction(
                        target=f"{method} {route}",
                        problem=f"{errors:.0f} of {total:.0f} requests failed with a server error",
                        suggestion="read the error logs for this route and handle the failing case",
                        priority="high" if errors / total > 0.1 else "medium",
                    )
                )
        for metric in ctx.metrics.latency.collect():
            sums = {
                (s.labels["method"], s.labels["route"]): s.value
                for s in metric.samples
                if s.name.endswith("_sum")
            }
            cnts = {
                (s.labels["method"], s.labels["route"]): s.value
                for s in metric.samples
                if s.name.endswith("_count")
            }
            for key, n in cnts.items():
                if n and sums[key] / n > self.slow_route_s:
                    actions.append(
                        ImprovementAction(
                            target=f"{key[0]} {key[1]}",
                            problem=f"mean latency {sums[key] / n:.2f}s over {n:.0f} requests",
                            suggestion="profile the route; cache or batch its downstream calls",
                            priority="medium",
                        )
                    )
        feedback = await self.recent_feedback()
        for fb in feedback:
            actions.append(
                ImprovementAction(
                    target=fb.context.get("route", fb.kind),
                    problem=fb.message,
                    suggestion=f"review {fb.kind} feedback from {fb.source}",
                    priority=fb.severity,
                )
            )
        return ImprovementPlan(
            slice=ctx.name,
            generated_at=datetime.now(UTC),
            actions=actions,
            based_on={"requests": ctx.metrics.requests_total, "feedback": len(feedback)},
        )


def _store_feedback(session: Session, fb: ImprovementFeedback) -> int:
    t = feedback_table
    session.execute(insert(t).values(received_at=fb.received_at, body=fb.model_dump_json()))
    newest = session.execute(select(func.max(t.c.id))).scalar_one()
    session.execute(delete(t).where(t.c.id <= newest - MAX_FEEDBACK))
    return int(session.execute(select(func.count()).select_from(t)).scalar_one())


def _read_feedback(session: Session) -> list[ImprovementFeedback]:
    t = feedback_table
    rows = session.execute(select(t.c.body).order_by(t.c.id.desc()).limit(MAX_FEEDBACK)).all()
    return [ImprovementFeedback.model_validate_json(r.body) for r in reversed(rows)]
