"""Sessions and their history: domain logic, no HTTP."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from services.kit.database import SliceDatabase, page
from services.kit.errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from services.kit.outbox import add_event
from services.session.models import AppendKey, ChatSession, Message
from services.session.schemas import (
    MessageCreate,
    MessagePublic,
    SearchHit,
    SearchResults,
    SessionCreate,
    SessionPublic,
    SessionResolve,
    SessionTrimmed,
)


def _public(row: ChatSession) -> SessionPublic:
    return SessionPublic(
        id=row.id,
        title=row.title,
        channel=row.channel,
        external_id=row.external_id,
        owner=row.owner,
        created_at=row.created_at,
        last_active_at=row.last_active_at,
        message_count=row.message_count,
        archived_count=row.archived_count,
        metadata=row.meta,
    )


def _owned(session: Session, session_id: str, owner: str | None) -> ChatSession:
    """The session if it exists and ``owner`` may see it. Another key's session is "not
    found", exactly like a missing one: its existence is not revealed."""
    row = session.get(ChatSession, session_id)
    if row is None or (owner is not None and row.owner != owner):
        raise NotFound(f"session {session_id!r} not found")
    return row


def create_session(*, session: Session, data: SessionCreate, owner: str | None) -> SessionPublic:
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
        owner=owner,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent create with the same id won the race
        raise Conflict(f"session {sid!r} already exists") from exc
    return _public(row)


def resolve_session(
    *, session: Session, data: SessionResolve, owner: str | None
) -> tuple[SessionPublic, bool]:
    """The session of ``(channel, external_id)``, created on first contact; and whether it
    was created now."""
    query = select(ChatSession).where(
        ChatSession.channel == data.channel, ChatSession.external_id == data.external_id
    )
    row = session.exec(query).first()
    if row is not None:
        if owner is not None and row.owner != owner:
            raise NotFound(f"no session for {data.channel}:{data.external_id} under this key")
        return _public(row), False
    now = datetime.now(UTC)
    row = ChatSession(
        id=uuid.uuid4().hex,
        title=data.title,
        channel=data.channel,
        external_id=data.external_id,
        created_at=now,
        last_active_at=now,
        meta=data.metadata,
        owner=owner,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # created concurrently: take that one
        found = session.exec(query).one()
        return _public(found), False
    return _public(row), True


def get_session(*, session: Session, session_id: str, owner: str | None) -> SessionPublic:
    """One session by id."""
    return _public(_owned(session, session_id, owner))


def list_sessions(
    *, session: Session, owner: str | None, channel: str | None, limit: int, offset: int
) -> tuple[list[SessionPublic], int]:
    """Sessions, most recently active first, and how many there are."""
    where = []
    if owner is not None:
        where.append(col(ChatSession.owner) == owner)
    if channel is not None:
        where.append(col(ChatSession.channel) == channel)
    rows, total = page(
        session,
        ChatSession,
        where,
        col(ChatSession.last_active_at).desc(),
        limit=limit,
        offset=offset,
    )
    return [_public(r) for r in rows], total


def append_messages(
    *,
    session: Session,
    session_id: str,
    messages: list[MessageCreate],
    max_chars: int,
    owner: str | None,
    idempotency_key: str | None = None,
    retain_max_messages: int = 0,
) -> tuple[list[MessagePublic], int, bool]:
    """Append messages in order, all or none. With an idempotency key seen before, nothing
    is stored and the first append's messages come back. Returns the messages, the
    session's message count and whether this call stored them."""
    for i, m in enumerate(messages):
        if m.content is not None and len(m.content) > max_chars:
            raise PayloadTooLarge(f"messages[{i}].content is longer than {max_chars} characters")
    now = datetime.now(UTC)
    # Touch the session row first: it takes the write lock before any read, so concurrent
    # appends to one session (and retries of one append) serialise instead of colliding.
    touched = session.execute(
        update(ChatSession)
        .where(col(ChatSession.id) == session_id)
        .values(last_active_at=now)
        .returning(col(ChatSession.owner), col(ChatSession.message_count))
    ).one_or_none()
    if touched is None or (owner is not None and touched[0] != owner):
        raise NotFound(f"session {session_id!r} not found")
    if idempotency_key is not None:
        seen = session.get(AppendKey, (session_id, idempotency_key))
        if seen is not None:
            rows = session.exec(
                select(Message)
                .where(
                    Message.session_id == session_id,
                    col(Message.seq) >= seen.first_seq,
                    col(Message.seq) < seen.first_seq + seen.count,
                )
                .order_by(col(Message.seq))
            ).all()
            public = [MessagePublic.model_validate(r, from_attributes=True) for r in rows]
            return public, touched[1], False
    new_count = session.execute(
        update(ChatSession)
        .where(col(ChatSession.id) == session_id)
        .values(message_count=col(ChatSession.message_count) + len(messages))
        .returning(col(ChatSession.message_count))
    ).scalar_one()
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
    if idempotency_key is not None:
        session.add(
            AppendKey(
                session_id=session_id,
                key=idempotency_key,
                first_seq=first_seq,
                count=len(messages),
                created_at=now,
            )
        )
    session.flush()
    add_event(
        session,
        "session.message_appended",
        "session.message_appended",
        {
            "session_id": session_id,
            "owner": touched[0],
            "first_seq": first_seq,
            "last_seq": new_count,
            "roles": [m.role for m in messages],
        },
    )
    if retain_max_messages and new_count > retain_max_messages:
        _archive_through(session, session_id, new_count - retain_max_messages)
    return [MessagePublic.model_validate(r, from_attributes=True) for r in rows], new_count, True


def list_messages(
    *,
    session: Session,
    session_id: str,
    after_seq: int,
    limit: int,
    tail: int | None,
    owner: str | None,
    include_archived: bool = False,
) -> tuple[list[MessagePublic], int]:
    """Messages in order: after ``after_seq`` (paging), or the last ``tail`` of them.
    Archived messages are left out unless asked for."""
    row = _owned(session, session_id, owner)
    query = select(Message).where(Message.session_id == session_id)
    if tail is not None:
        query = query.where(Message.seq > row.message_count - tail)
    if not include_archived:
        query = query.where(col(Message.archived).is_(False))
    query = query.where(Message.seq > after_seq).order_by(col(Message.seq)).limit(limit)
    rows = session.exec(query).all()
    data = [MessagePublic.model_validate(r, from_attributes=True) for r in rows]
    return data, row.message_count


# -- retention ------------------------------------------------------------------------------


def _archive_through(session: Session, session_id: str, last_seq: int) -> int:
    """Archive the live messages up to about ``last_seq`` (a prefix: the history stays
    contiguous). The live history must start at a user message, so no tool result is ever
    kept without the call it answers: the cut moves back to just before the user message
    that begins the exchange ``last_seq`` is part of."""
    if last_seq <= 0:
        return 0
    first_live = session.exec(
        select(func.max(Message.seq)).where(
            Message.session_id == session_id, Message.seq <= last_seq + 1, Message.role == "user"
        )
    ).one()
    if first_live is None:
        return 0
    last_seq = first_live - 1
    if last_seq <= 0:
        return 0
    archived = _rowcount(
        session.execute(
            update(Message)
            .where(
                col(Message.session_id) == session_id,
                col(Message.seq) <= last_seq,
                col(Message.archived).is_(False),
            )
            .values(archived=True)
        )
    )
    if archived:
        session.execute(
            update(ChatSession)
            .where(col(ChatSession.id) == session_id)
            .values(archived_count=col(ChatSession.archived_count) + archived)
        )
    return int(archived or 0)


def trim_session(
    *,
    session: Session,
    session_id: str,
    owner: str | None,
    max_messages: int,
    max_age_days: float,
    max_tokens: int,
) -> SessionTrimmed:
    """Apply the retention policies: by count, age and (estimated) tokens. Messages are
    archived, never deleted; export still has them."""
    row = _owned(session, session_id, owner)
    cut = 0
    if max_messages:
        cut = max(cut, row.message_count - max_messages)
    if max_age_days:
        oldest_kept = datetime.now(UTC) - timedelta(days=max_age_days)
        old = session.exec(
            select(func.max(Message.seq)).where(
                Message.session_id == session_id, col(Message.created_at) < oldest_kept
            )
        ).one()
        cut = max(cut, old or 0)
    if max_tokens:
        used = 0
        live = session.exec(
            select(Message.seq, Message.content, Message.tool_calls)
            .where(Message.session_id == session_id, col(Message.archived).is_(False))
            .order_by(col(Message.seq).desc())
        ).all()
        for seq, content, tool_calls in live:
            used += estimate_tokens(content, tool_calls)
            if used > max_tokens:
                cut = max(cut, seq)
                break
    archived = _archive_through(session, session_id, cut)
    session.refresh(row)
    return SessionTrimmed(
        session_id=session_id,
        archived=archived,
        archived_total=row.archived_count,
        live=row.message_count - row.archived_count,
    )


def estimate_tokens(content: str | None, tool_calls: Any = None) -> int:
    size = len(content or "") + (len(json.dumps(tool_calls)) if tool_calls else 0)
    return size // 4 + 4


def sessions_needing_retention(session: Session, limit: int = 1_000) -> list[str]:
    return list(
        session.exec(
            select(ChatSession.id)
            .where(col(ChatSession.message_count) > col(ChatSession.archived_count))
            .order_by(col(ChatSession.last_active_at))
            .limit(limit)
        ).all()
    )


# -- search, export, delete -----------------------------------------------------------------


def _fts_query(text: str) -> str:
    """A user's words as an FTS5 query: each a quoted term (no operators), all required."""
    words = re.findall(r"\w+", text, flags=re.UNICODE)
    return " ".join('"' + w.replace('"', "") + '"' for w in words[:32])


def search_messages(
    *, session: Session, session_id: str, owner: str | None, query: str, limit: int
) -> SearchResults:
    """Full-text search in one session's messages (archived ones included), best first."""
    _owned(session, session_id, owner)
    hits: list[SearchHit] = []
    if session.get_bind().dialect.name == "sqlite":
        match = _fts_query(query)
        if not match:
            raise BadRequest("the query has no words to search for")
        rows = session.execute(
            text(
                "SELECT m.id, bm25(messages_fts) AS rank, "
                "snippet(messages_fts, 0, '[', ']', '…', 12) AS snip "
                "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
                "WHERE messages_fts MATCH :q AND m.session_id = :sid "
                "ORDER BY rank LIMIT :n"
            ),
            {"q": match, "sid": session_id, "n": limit},
        ).all()
        scores = {r[0]: (-float(r[1]), str(r[2])) for r in rows}
    else:  # PostgreSQL: its built-in text search, no extension needed
        rows = session.execute(
            text(
                "SELECT id, ts_rank(to_tsvector('simple', coalesce(content, '')), q) AS rank, "
                "ts_headline('simple', coalesce(content, ''), q, "
                "'StartSel=[,StopSel=],MaxWords=24,MinWords=8') AS snip "
                "FROM messages, plainto_tsquery('simple', :q) q "
                "WHERE session_id = :sid AND to_tsvector('simple', coalesce(content, '')) @@ q "
                "ORDER BY rank DESC LIMIT :n"
            ),
            {"q": query, "sid": session_id, "n": limit},
        ).all()
        scores = {r[0]: (float(r[1]), str(r[2])) for r in rows}
    if scores:
        found = session.exec(select(Message).where(col(Message.id).in_(list(scores)))).all()
        by_id = {m.id: m for m in found}
        for mid, (score, snip) in scores.items():
            msg = by_id.get(mid)
            if msg is not None:
                public = MessagePublic.model_validate(msg, from_attributes=True)
                hits.append(SearchHit(message=public, score=round(score, 6), snippet=snip))
    return SearchResults(query=query, data=hits)


def export_lines(db: SliceDatabase, first: SessionPublic) -> Iterator[bytes]:
    """The session as JSON Lines: the session first, then every message (archived too),
    read page by page so a long session does not sit in memory. The caller checked that
    the session may be read."""
    session_id = first.id
    yield _jsonl({"type": "session", **first.model_dump(mode="json")})
    after = 0
    while True:
        with db.session(write=False) as s:
            rows = s.exec(
                select(Message)
                .where(Message.session_id == session_id, Message.seq > after)
                .order_by(col(Message.seq))
                .limit(500)
            ).all()
        if not rows:
            return
        for r in rows:
            public = MessagePublic.model_validate(r, from_attributes=True)
            yield _jsonl({"type": "message", **public.model_dump(mode="json")})
        after = rows[-1].seq


def _jsonl(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


def delete_session(*, session: Session, session_id: str, owner: str | None) -> int:
    """Delete a session and every message of it; how many messages went."""
    _owned(session, session_id, owner)
    gone = _rowcount(session.execute(delete(Message).where(col(Message.session_id) == session_id)))
    session.execute(delete(AppendKey).where(col(AppendKey.session_id) == session_id))
    session.execute(delete(ChatSession).where(col(ChatSession.id) == session_id))
    return int(gone or 0)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
