"""The skills slice: skills from folders and uploads, loaded as hostile input, selected
for each turn; changes on disk are picked up without a restart."""

from __future__ import annotations

import asyncio
import contextlib
from functools import partial
from typing import Any

import anyio
import structlog
from fastapi import APIRouter
from sqlalchemy import MetaData, func
from sqlmodel import Session, select

from services.kit.slice_base import AtomicSlice, SliceContext
from services.kit.versions import SharedVersion
from services.skills import service
from services.skills.loader import SkillRejected
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
        self._on_disk: set[str] | None = None  # skills this process found on its disk
        self._unpacked: dict[str, str] = {}  # uploads unpacked here: name -> archive sha256
        self.uploads = SharedVersion(
            service.UPLOADS_REGISTRY, recheck_s=ctx.settings.replicas.registry_recheck_s
        )
        result = await self.reload()
        log.info("skills_loaded", loaded=len(result.loaded), refused=len(result.errors))
        if ctx.settings.skills.watch_every_s:
            self._watch = asyncio.create_task(self._watch_forever())

    async def shutdown(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch

    async def upload(self, data: bytes) -> str:
        """Install an uploaded archive here and keep it for the other replicas; its name."""
        ctx = self.context
        async with self._lock:
            skill = await anyio.to_thread.run_sync(service.install_upload, data, ctx.settings)
            name = skill.meta.name
            self._unpacked[name] = await ctx.db.run(
                lambda s: service.save_upload(s, name=name, data=data)
            )
        await self.reload()
        return name

    async def refresh(self) -> None:
        """Reload if another replica uploaded a skill (checked at most every
        ``replicas.registry_recheck_s``)."""
        if not self.uploads.due():
            return
        if await self.context.db.run(self.uploads.moved, write=False) is not None:
            await self.reload()

    async def _unpack_uploads(self) -> None:
        """Unpack the uploads (from the database) this replica does not have yet."""
        ctx = self.context
        version = await ctx.db.run(self.uploads.moved, write=False)  # before the rows
        digests = await ctx.db.run(service.upload_digests, write=False)
        for name, sha in digests.items():
            if self._unpacked.get(name) == sha:
                continue
            data = await ctx.db.run(partial(service.read_upload, name=name), write=False)
            if data is None:
                continue  # replaced or removed meanwhile: the next reload sees it
            try:
                await anyio.to_thread.run_sync(service.install_upload, data, ctx.settings)
            except (SkillRejected, OSError) as exc:  # e.g. this replica ships such a skill
                log.warning("upload_not_unpacked", skill=name, reason=str(exc))
            self._unpacked[name] = service.archive_sha256(data)
        if version is not None:
            self.uploads.loaded_as(version)

    async def reload(self) -> ReloadResult:
        """Unpack new uploads, scan the folders and bring the registry in line (one reload
        at a time)."""
        ctx = self.context
        folders = service.skill_folders(ctx.settings)
        async with self._lock:
            await self._unpack_uploads()
            self._seen = await anyio.to_thread.run_sync(service.fingerprint, folders)
            skills, refused = await anyio.to_thread.run_sync(
                service.scan, folders, ctx.settings.skills
            )
            seen_before = self._on_disk
            result = await ctx.db.run(
                lambda s: service.store(s, skills, refused, seen_before=seen_before or set())
            )
            # still on disk: found now, or found before and neither removed nor gone
            kept = {n for n in seen_before or () if n not in result.removed}
            self._on_disk = kept | {k.meta.name for k in skills}
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
                moved = None
                if self.uploads.due():
                    moved = await ctx.db.run(self.uploads.moved, write=False)
                if now != self._seen or moved is not None:
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
