"""The agent_core slice: the agent loop (LLM calls, tool calls, bounds, traces)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import MetaData, func
from sqlmodel import Session, select

from services.agent_core.deps import AgentDeps, TurnMetrics
from services.agent_core.models import AgentBase, Turn
from services.agent_core.routes import router
from services.kit.slice_base import AtomicSlice, SliceContext
from services.memory.client import MemoryClient
from services.providers.client import ProvidersClient
from services.session.client import SessionClient
from services.skills.client import SkillsClient
from services.tools.client import ToolsClient


class AgentCoreSlice(AtomicSlice):
    name = "agent_core"

    def routers(self) -> list[APIRouter]:
        return [router]

    def metadata(self) -> MetaData:
        return AgentBase.metadata

    async def startup(self, ctx: SliceContext) -> None:
        await super().startup(ctx)
        self.deps = AgentDeps(
            ctx=ctx,
            sessions=SessionClient(ctx.pool, ctx.settings.session.base_url),
            providers=ProvidersClient(ctx.pool, ctx.settings.providers.base_url),
            tools=ToolsClient(ctx.pool, ctx.settings.tools.base_url),
            memory=MemoryClient(ctx.pool, ctx.settings.memory.base_url),
            skills=SkillsClient(ctx.pool, ctx.settings.skills.base_url),
            metrics=TurnMetrics(ctx.metrics.registry),
        )

    async def status_details(self) -> dict[str, Any]:
        def counts(s: Session) -> dict[str, Any]:
            rows = s.exec(select(Turn.outcome, func.count()).group_by(Turn.outcome)).all()
            return {"turns": dict(rows), "model": self.context.settings.agent_core.model}

        return await self.context.db.run(counts, write=False)


def create_slice() -> AgentCoreSlice:
    return AgentCoreSlice()
