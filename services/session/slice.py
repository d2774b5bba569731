"""The session slice: sessions and conversation history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import MetaData, func
from sqlmodel import Session, select

from services.kit.slice_base import AtomicSlice
from services.session.models import ChatSession, Message, SessionBase
from services.session.routes import router


class SessionSlice(AtomicSlice):
    name = "session"

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
