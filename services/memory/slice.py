"""The memory slice: memories with scoped full-text search, and consolidation of
conversation history into memories (on demand and on a schedule)."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter
from sqlalchemy import MetaData, func
from sqlmodel import Session, select

from services.kit.lease import LeasedSchedule
from services.kit.slice_base import AtomicSlice, SliceContext
from services.memory.deps import MemoryDeps
from services.memory.models import ConsolidationRun, Memory, MemoryBase
from services.memory.routes import router
from services.memory.service import Consolidator
from services.providers.client import ProvidersClient
from services.session.client import SessionClient

log = structlog.get_logger("memory")


class MemorySlice(AtomicSlice):
    name = "memory"
    _schedule: LeasedSchedule | None = None

    def routers(self) -> list[APIRouter]:
        return [router]

    def metadata(self) -> MetaData:
        return MemoryBase.metadata

    async def startup(self, ctx: SliceContext) -> None:
        await super().startup(ctx)
        s = ctx.settings
        self.deps = MemoryDeps(
            consolidator=Consolidator(
                db=ctx.db,
                sessions=SessionClient(ctx.pool, s.session.base_url),
                providers=ProvidersClient(ctx.pool, s.providers.base_url),
                settings=s.memory,
                model=s.memory.consolidation_model or s.agent_core.model,
            )
        )
        if s.memory.consolidate_every_s:
            # one replica of the fleet consolidates (its LLM calls are paid once)
            self._schedule = LeasedSchedule(
                ctx.db, "memory.consolidate", s.memory.consolidate_every_s, self._consolidate
            )
            self._schedule.start()

    async def shutdown(self) -> None:
        if self._schedule is not None:
            await self._schedule.stop()

    async def _consolidate(self) -> None:
        try:
            await self.consolidate_all()
        except Exception:
            log.exception("scheduled_consolidation_failed")

    async def consolidate_all(self) -> int:
        """One pass over the most recently active sessions; runs that found something."""
        consolidator = self.deps.consolidator
        sessions = await consolidator.sessions.request("GET", "/v1/sessions", params={"limit": 200})
        done = 0
        for item in sessions["data"]:
            run = await consolidator.run(item["id"])
            done += run.status != "nothing_new"
        return done

    async def status_details(self) -> dict[str, Any]:
        def counts(s: Session) -> dict[str, Any]:
            return {
                "memories": s.exec(select(func.count()).select_from(Memory)).one(),
                "consolidation_runs": s.exec(
                    select(func.count()).select_from(ConsolidationRun)
                ).one(),
                "search": "sqlite fts5 (bm25)"
                if s.get_bind().dialect.name == "sqlite"
                else "word match (no FTS5)",
            }

        return await self.context.db.run(counts, write=False)


def create_slice() -> MemorySlice:
    return MemorySlice()
