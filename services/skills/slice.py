"""The skills slice: skills from folders and uploads, loaded as hostile input, selected
for each turn; changes on disk are picked up without a restart."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import anyio
import structlog
from fastapi import APIRouter
from sqlalchemy import MetaData, func
from sqlmodel import Session, select

from services.kit.slice_base import AtomicSlice, SliceContext
from services.skills import service
from services.skills.models import SkillError, SkillRecord, SkillsBase
from services.skills.routes import router
from services.skills.schemas import ReloadResult

log = structlog.get_logger("skills")


class SkillsSlice(AtomicSlice):
    name = "skills"
    _watch: asyncio.Task[None] | None = None
    _lock: asyncio.Lock

    def routers(self) -> list[APIRouter]:
        return [router]

    def metadata(self) -> MetaData:
        return SkillsBase.metadata

    async def startup(self, ctx: SliceContext) -> None:
        await super().startup(ctx)
        self._lock = asyncio.Lock()
        self._seen: tuple[Any, ...] = ()
        result = await self.reload()
        log.info("skills_loaded", loaded=len(result.loaded), refused=len(result.errors))
        if ctx.settings.skills.watch_every_s:
            self._watch = asyncio.create_task(self._watch_forever())

    async def shutdown(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch

    async def reload(self) -> ReloadResult:
        """Scan the folders and bring the registry in line (one reload at a time)."""
        ctx = self.context
        folders = service.skill_folders(ctx.settings)
        async with self._lock:
            self._seen = await anyio.to_thread.run_sync(service.fingerprint, folders)
            skills, refused = await anyio.to_thread.run_sync(
                service.scan, folders, ctx.settings.skills
            )
            result = await ctx.db.run(lambda s: service.store(s, skills, refused))
        for error in result.errors:
            log.warning("skill_refused", source=error.source, reason=error.reason)
        return result

    async def _watch_forever(self) -> None:
        ctx = self.context
        while True:
            await asyncio.sleep(ctx.settings.skills.watch_every_s)
            try:
                now = await anyio.to_thread.run_sync(
                    service.fingerprint, service.skill_folders(ctx.settings)
                )
                if now != self._seen:
                    result = await self.reload()
                    log.info("skills_reloaded", loaded=result.loaded, removed=result.removed)
            except Exception:
                log.exception("skills_watch_failed")

    async def status_details(self) -> dict[str, Any]:
        def counts(s: Session) -> dict[str, Any]:
            return {
                "skills": s.exec(select(func.count()).select_from(SkillRecord)).one(),
                "refused": s.exec(select(func.count()).select_from(SkillError)).one(),
                "folders": [str(f) for f in service.skill_folders(self.context.settings)],
            }

        return await self.context.db.run(counts, write=False)


def create_slice() -> SkillsSlice:
    return SkillsSlice()
