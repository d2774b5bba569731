"""The session slice's HTTP routes: thin, the work is in service.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from services.kit.app import ContextDep, DbSessionDep
from services.kit.config import SessionSettings
from services.kit.errors import Conflict, NotFound, PayloadTooLarge, error_responses
from services.kit.query import MAX_OFFSET, MAX_PAGE, MAX_SEQ
from services.session import service
from services.session.schemas import (
    SESSION_ID_PATTERN,
    MessagesAppend,
    MessagesPublic,
    SessionCreate,
    SessionPublic,
    SessionsPublic,
)

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])
SessionId = Annotated[str, Path(pattern=SESSION_ID_PATTERN, description="Session id")]


async def get_session_settings(ctx: ContextDep) -> SessionSettings:
    return ctx.settings.session


SettingsDep = Annotated[SessionSettings, Depends(get_session_settings)]


@router.post("", status_code=201, responses=error_responses(Conflict))
def create_session(body: SessionCreate, db: DbSessionDep) -> SessionPublic:
    return service.create_session(session=db, data=body)


@router.get("")
def read_sessions(
    db: DbSessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> SessionsPublic:
    data, count = service.list_sessions(session=db, limit=limit, offset=offset)
    return SessionsPublic(data=data, count=count)


@router.get("/{session_id}", responses=error_responses(NotFound))
def read_session(session_id: SessionId, db: DbSessionDep) -> SessionPublic:
    return service.get_session(session=db, session_id=session_id)


@router.post(
    "/{session_id}/messages", status_code=201, responses=error_responses(NotFound, PayloadTooLarge)
)
def append_messages(
    session_id: SessionId, body: MessagesAppend, db: DbSessionDep, settings: SettingsDep
) -> MessagesPublic:
    """Append one or more messages, atomically and in order."""
    rows = service.append_messages(
        session=db,
        session_id=session_id,
        messages=body.messages,
        max_chars=settings.max_message_chars,
    )
    return MessagesPublic(data=rows, count=rows[-1].seq)


@router.get("/{session_id}/messages", responses=error_responses(NotFound))
def read_messages(
    session_id: SessionId,
    db: DbSessionDep,
    settings: SettingsDep,
    after_seq: Annotated[
        int, Query(ge=0, le=MAX_SEQ, description="Return messages after this seq")
    ] = 0,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE, description="Page size (capped by config)")
    ] = 100,
    tail: Annotated[
        int | None, Query(ge=1, le=MAX_PAGE, description="Only the last N messages")
    ] = None,
) -> MessagesPublic:
    data, count = service.list_messages(
        session=db,
        session_id=session_id,
        after_seq=after_seq,
        limit=min(limit, settings.max_page_size),
        tail=tail,
    )
    return MessagesPublic(data=data, count=count)
