"""The session slice's HTTP routes: thin, the work is in service.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from services.kit.app import ContextDep, DbSessionDep
from services.kit.context import OWNER_HEADER
from services.kit.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, error_responses
from services.kit.query import MAX_PAGE, MAX_SEQ, Page, pagination
from services.session import service
from services.session.config import SessionSettings
from services.session.schemas import (
    CHANNEL_PATTERN,
    IDEMPOTENCY_HEADER,
    SESSION_ID_PATTERN,
    MessagesAppend,
    MessagesPublic,
    SearchResults,
    SessionCreate,
    SessionPublic,
    SessionResolve,
    SessionsPublic,
    SessionTrimmed,
)

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])
SessionId = Annotated[str, Path(pattern=SESSION_ID_PATTERN, description="Session id")]


async def get_session_settings(ctx: ContextDep) -> SessionSettings:
    return ctx.settings.session


SettingsDep = Annotated[SessionSettings, Depends(get_session_settings)]
SessionsPage = Annotated[Page, Depends(pagination(default=50))]
MessagesPage = Annotated[  # pages by after_seq, not by offset
    Page,
    Depends(pagination(most=MAX_PAGE, offset=False, description="Page size (capped by config)")),
]
SearchPage = Annotated[Page, Depends(pagination(default=20, offset=False))]


Owner = Annotated[
    str | None,
    Header(
        alias=OWNER_HEADER,
        max_length=64,
        description="The API key id the request acts for: another key's sessions are 404",
    ),
]


@router.post("", status_code=201, responses=error_responses(Conflict))
def create_session(body: SessionCreate, db: DbSessionDep, owner: Owner = None) -> SessionPublic:
    """A new session, owned by the key in ``X-Owner`` (if any)."""
    return service.create_session(session=db, data=body, owner=owner)


@router.post("/resolve", responses=error_responses(NotFound))
def resolve_session(
    body: SessionResolve, db: DbSessionDep, response: Response, owner: Owner = None
) -> SessionPublic:
    """The session of a channel's user or chat (``channel`` + ``external_id``), created on
    first contact (201) or found (200)."""
    found, created = service.resolve_session(session=db, data=body, owner=owner)
    response.status_code = 201 if created else 200
    return found


@router.get("")
def read_sessions(
    db: DbSessionDep,
    page: SessionsPage,
    owner: Owner = None,
    channel: Annotated[str | None, Query(pattern=CHANNEL_PATTERN)] = None,
) -> SessionsPublic:
    """Sessions, most recently active first (only the owner's with ``X-Owner``)."""
    data, count = service.list_sessions(
        session=db, owner=owner, channel=channel, limit=page.limit, offset=page.offset
    )
    return SessionsPublic(data=data, count=count)


@router.get("/{session_id}", responses=error_responses(NotFound))
def read_session(session_id: SessionId, db: DbSessionDep, owner: Owner = None) -> SessionPublic:
    return service.get_session(session=db, session_id=session_id, owner=owner)


@router.delete("/{session_id}", status_code=204, responses=error_responses(NotFound))
def delete_session(session_id: SessionId, db: DbSessionDep, owner: Owner = None) -> None:
    """Delete the session and all its messages, for good."""
    service.delete_session(session=db, session_id=session_id, owner=owner)


@router.get(
    "/{session_id}/export",
    responses={**error_responses(NotFound), 200: {"content": {"application/x-ndjson": {}}}},
)
def export_session(
    session_id: SessionId, db: DbSessionDep, ctx: ContextDep, owner: Owner = None
) -> StreamingResponse:
    """The session and every message (archived too) as JSON Lines."""
    first = service.get_session(session=db, session_id=session_id, owner=owner)
    return StreamingResponse(
        iterate_in_threadpool(service.export_lines(ctx.db, first)),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="session-{session_id}.jsonl"'},
    )


@router.post(
    "/{session_id}/messages", status_code=201, responses=error_responses(NotFound, PayloadTooLarge)
)
def append_messages(
    session_id: SessionId,
    body: MessagesAppend,
    db: DbSessionDep,
    settings: SettingsDep,
    response: Response,
    owner: Owner = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_HEADER,
            min_length=1,
            max_length=128,
            description="A retry with the same key stores nothing and returns the first result",
        ),
    ] = None,
) -> MessagesPublic:
    """Append one or more messages, atomically and in order (200 for a replayed key)."""
    rows, count, stored = service.append_messages(
        session=db,
        session_id=session_id,
        messages=body.messages,
        max_chars=settings.max_message_chars,
        owner=owner,
        idempotency_key=idempotency_key,
        retain_max_messages=settings.retain_max_messages,
    )
    if not stored:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return MessagesPublic(data=rows, count=count)


@router.get("/{session_id}/messages", responses=error_responses(NotFound))
def read_messages(
    session_id: SessionId,
    db: DbSessionDep,
    settings: SettingsDep,
    page: MessagesPage,
    owner: Owner = None,
    after_seq: Annotated[
        int, Query(ge=0, le=MAX_SEQ, description="Return messages after this seq")
    ] = 0,
    tail: Annotated[
        int | None, Query(ge=1, le=MAX_PAGE, description="Only the last N messages")
    ] = None,
    include_archived: Annotated[
        bool, Query(description="Also the messages retention archived")
    ] = False,
) -> MessagesPublic:
    data, count = service.list_messages(
        session=db,
        session_id=session_id,
        after_seq=after_seq,
        limit=min(page.limit, settings.max_page_size),
        tail=tail,
        owner=owner,
        include_archived=include_archived,
    )
    return MessagesPublic(data=data, count=count)


@router.get("/{session_id}/search", responses=error_responses(NotFound, BadRequest))
def search_messages(
    session_id: SessionId,
    db: DbSessionDep,
    settings: SettingsDep,
    q: Annotated[str, Query(min_length=1, max_length=500, description="Words to find")],
    page: SearchPage,
    owner: Owner = None,
) -> SearchResults:
    """Full-text search in the session's messages, best match first, with snippets."""
    return service.search_messages(
        session=db,
        session_id=session_id,
        owner=owner,
        query=q,
        limit=min(page.limit, settings.max_search_results),
    )


@router.post("/{session_id}/trim", responses=error_responses(NotFound))
def trim_session(
    session_id: SessionId, db: DbSessionDep, settings: SettingsDep, owner: Owner = None
) -> SessionTrimmed:
    """Apply the retention policies now (count, age, tokens): older messages are archived,
    never deleted."""
    return service.trim_session(
        session=db,
        session_id=session_id,
        owner=owner,
        max_messages=settings.retain_max_messages,
        max_age_days=settings.retain_max_age_days,
        max_tokens=settings.retain_max_tokens,
    )
