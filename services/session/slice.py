"""The session slice: sessions and conversation history."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter
from sqlalchemy import MetaData, func
from sqlmodel import Session, select

from services.kit.lease import LeasedSchedule
from services.kit.slice_base import AtomicSlice, SliceContext
from services.session import service
from services.session.models import ChatSession, Message, SessionBase
from services.session.routes import router

log = structlog.get_logger("session")


class SessionSlice(AtomicSlice):
    name = "session"
    _retention: LeasedSchedule | None = None

    async def startup(self, ctx: SliceContext) -> None:
        await super().startup(ctx)
        s = ctx.settings.session
        policies = s.retain_max_messages or s.retain_max_age_days or s.retain_max_tokens
        if policies and s.retention_every_s:
            # one replica of the fleet applies it
            self._retention = LeasedSchedule(
                ctx.db, "session.retention", s.retention_every_s, self._retain, run_at_start=True
            )
            self._retention.start()

    async def shutdown(self) -> None:
        if self._retention is not None:
            await self._retention.stop()

    async def _retain(self) -> None:
        try:
            archived = await self.apply_retention()
            if archived:
                log.info("retention_archived", messages=archived)
        except Exception:
            log.exception("retention_failed")

    async def apply_retention(self) -> int:
        """Trim every session with live messages by the configured policies."""
        ctx = self.context
        s = ctx.settings.session
        ids = await ctx.db.run(service.sessions_needing_retention, write=False)
        archived = 0
        for sid in ids:
            trimmed = await ctx.db.run(
                lambda db, sid=sid: service.trim_session(  # type: ignore[misc]
                    session=db,
                    session_id=sid,
                    owner=None,
                    max_messages=s.retain_max_messages,
                    max_age_days=s.retain_max_age_days,
                    max_tokens=s.retain_max_tokens,
                )
            )
            archived += trimmed.archived
        return archived

    def routers(self) -> list[APIRouter]:
        return [router]

    def metadata(self) -> MetaData:
        return SessionBase.metadata

    async def status_details(self) -> dict[str, Any]:
        def counts(s: Session) -> dict[str, Any]:
            return {
                "sessions": s.exec(select(func.count()).select_from(ChatSession)).one(),
                "messages": s.exec(select(func.count()).select_from(Message)).one(),
            }

        return await self.context.db.run(counts, write=False)


def create_slice() -> SessionSlice:
    return SessionSlice()
