"""Sessions and their history: domain logic, no HTTP."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from services.kit.errors import Conflict, NotFound, PayloadTooLarge
from services.session.models import ChatSession, Message
from services.session.schemas import (
    MessageCreate,
    MessagePublic,
    SessionCreate,
    SessionPublic,
)


def _public(row: ChatSession) -> SessionPublic:
    return SessionPublic(
        id=row.id,
        title=row.title,
        channel=row.channel,
        created_at=row.created_at,
        last_active_at=row.last_active_at,
        message_count=row.message_count,
        metadata=row.meta,
    )


def create_session(*, session: Session, data: SessionCreate) -> SessionPublic:
    """Create a session; a chosen id that exists already is a conflict."""
    now = datetime.now(UTC)
    sid = data.id or uuid.uuid4().hex
    if data.id and session.get(ChatSession, sid) is not None:
        raise Conflict(f"session {sid!r} already exists")
    row = ChatSession(
        id=sid,
        title=data.title,
        channel=data.channel,
        created_at=now,
        last_active_at=now,
        meta=data.metadata,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent create with the same id won the race
        raise Conflict(f"session {sid!r} already exists") from exc
    return _public(row)


def get_session(*, session: Session, session_id: str) -> SessionPublic:
    """One session by id."""
    row = session.get(ChatSession, session_id)
    if row is None:
        raise NotFound(f"session {session_id!r} not found")
    return _public(row)


def list_sessions(*, session: Session, limit: int, offset: int) -> tuple[list[SessionPublic], int]:
    """Sessions, most recently active first, and how many there are."""
    total = session.exec(select(func.count()).select_from(ChatSession)).one()
    rows = session.exec(
        select(ChatSession)
        .order_by(col(ChatSession.last_active_at).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return [_public(r) for r in rows], total


def append_messages(
    *, session: Session, session_id: str, messages: list[MessageCreate], max_chars: int
) -> list[MessagePublic]:
    """Append messages in order; all or none are stored."""
    for i, m in enumerate(messages):
        if m.content is not None and len(m.content) > max_chars:
            raise PayloadTooLarge(f"messages[{i}].content is longer than {max_chars} characters")
    now = datetime.now(UTC)
    # Claim the sequence numbers with one UPDATE first: it takes the write lock before any
    # read, so concurrent appends to one session serialise instead of colliding.
    new_count = session.execute(
        update(ChatSession)
        .where(col(ChatSession.id) == session_id)
        .values(message_count=col(ChatSession.message_count) + len(messages), last_active_at=now)
        .returning(col(ChatSession.message_count))
    ).scalar_one_or_none()
    if new_count is None:
        raise NotFound(f"session {session_id!r} not found")
    first_seq = new_count - len(messages) + 1
    rows = [
        Message(
            session_id=session_id,
            seq=first_seq + i,
            role=m.role,
            content=m.content,
            name=m.name,
            tool_call_id=m.tool_call_id,
            tool_calls=[c.model_dump() for c in m.tool_calls] if m.tool_calls else None,
            created_at=now,
        )
        for i, m in enumerate(messages)
    ]
    session.add_all(rows)
    session.flush()
    return [MessagePublic.model_validate(r, from_attributes=True) for r in rows]


def list_messages(
    *, session: Session, session_id: str, after_seq: int, limit: int, tail: int | None
) -> tuple[list[MessagePublic], int]:
    """Messages in order: after ``after_seq`` (paging), or the last ``tail`` of them."""
    owner = session.get(ChatSession, session_id)
    if owner is None:
        raise NotFound(f"session {session_id!r} not found")
    query = select(Message).where(Message.session_id == session_id)
    if tail is not None:
        query = query.where(Message.seq > owner.message_count - tail)
    query = query.where(Message.seq > after_seq).order_by(col(Message.seq)).limit(limit)
    rows = session.exec(query).all()
    data = [MessagePublic.model_validate(r, from_attributes=True) for r in rows]
    return data, owner.message_count
