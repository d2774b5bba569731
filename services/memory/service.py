"""Memories: CRUD, scoped full-text search (SQLite FTS5, BM25), near-duplicate merging,
and consolidation of conversation history into memories through the LLM gateway."""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, literal_column, or_, text
from sqlmodel import Session, col, select

from services.kit.database import SliceDatabase, page
from services.kit.errors import BadRequest, NotFound, PayloadTooLarge, SliceError
from services.kit.outbox import add_event
from services.kit.text import STOPWORDS
from services.memory.config import MemorySettings
from services.memory.models import ConsolidationCursor, ConsolidationRun, Memory
from services.memory.schemas import (
    ConsolidationPublic,
    MemoryCreate,
    MemoryHit,
    MemoryPublic,
    MemoryUpdate,
    SearchResults,
)
from services.providers.client import ProvidersClient
from services.session.client import SessionClient

log = structlog.get_logger("memory")
WORD = re.compile(r"\w+", re.UNICODE)


def _token(prefix: str, value: str) -> str:
    return prefix + hashlib.sha1(value.encode()).hexdigest()[:16]  # noqa: S324 - a label


def scope_key(scope: str, subject: str, owner: str | None) -> str:
    """The tokens that let one FTS query filter by scope, subject and owner in the index."""
    where = "g" if scope == "global" else _token("u" if scope == "user" else "s", subject)
    return f"{where} {_token('o', owner) if owner else 'onone'}"


def _public(row: Memory) -> MemoryPublic:
    return MemoryPublic.model_validate(row, from_attributes=True)


def _visible(row: Memory | None, owner: str | None, memory_id: str) -> Memory:
    if row is None or (owner is not None and row.owner not in (owner, None)):
        raise NotFound(f"memory {memory_id!r} not found")
    return row


def words(text_: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text_)]


def similarity(a: str, b: str) -> float:
    """Word-set overlap (Jaccard) of two texts, stopwords left out."""
    sa = {w for w in words(a) if w not in STOPWORDS}
    sb = {w for w in words(b) if w not in STOPWORDS}
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / len(sa | sb)


def _check_size(data: MemoryCreate | MemoryUpdate, settings: MemorySettings) -> None:
    if data.text is not None and len(data.text) > settings.max_text_chars:
        raise PayloadTooLarge(f"text is longer than {settings.max_text_chars} characters")
    if data.tags is not None and len(data.tags) > settings.max_tags:
        raise BadRequest(f"at most {settings.max_tags} tags")


def create_memory(
    session: Session,
    data: MemoryCreate,
    *,
    owner: str | None,
    settings: MemorySettings,
    dedupe: bool = False,
) -> tuple[MemoryPublic, bool]:
    """Store a memory; with ``dedupe``, a near-duplicate in the same scope is merged into
    instead (mentions counted, importance raised, tags joined). Returns it and whether it
    was created."""
    _check_size(data, settings)
    now = datetime.now(UTC)
    if dedupe:
        twin = _near_duplicate(session, data, owner, settings.duplicate_similarity)
        if twin is not None:
            twin.mentions += 1
            twin.importance = max(twin.importance, data.importance)
            twin.tags = list(dict.fromkeys([*twin.tags, *data.tags]))[: settings.max_tags]
            twin.updated_at = now
            session.add(twin)
            session.flush()
            _stored_event(session, twin, created=False)
            return _public(twin), False
    row = Memory(
        id=uuid.uuid4().hex,
        scope=data.scope,
        subject=data.subject,
        scope_key=scope_key(data.scope, data.subject, owner),
        owner=owner,
        text=data.text,
        kind=data.kind,
        importance=data.importance,
        tags=data.tags,
        source_session=data.source_session,
        source_message=data.source_message,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    _stored_event(session, row, created=True)
    return _public(row), True


def _stored_event(session: Session, row: Memory, *, created: bool) -> None:
    add_event(
        session,
        "memory.stored",
        "memory.stored",
        {
            "memory_id": row.id,
            "scope": row.scope,
            "subject": row.subject,
            "owner": row.owner,
            "kind": row.kind,
            "created": created,
            "mentions": row.mentions,
            "source_session": row.source_session,
        },
    )


def _near_duplicate(
    session: Session, data: MemoryCreate, owner: str | None, threshold: float
) -> Memory | None:
    hits = _search_rows(
        session,
        query=data.text,
        owner=owner,
        scopes=[(data.scope, data.subject)],
        limit=5,
    )
    best = max(hits, key=lambda h: similarity(h[0].text, data.text), default=None)
    if best is not None and similarity(best[0].text, data.text) >= threshold:
        return best[0]
    return None


def get_memory(session: Session, memory_id: str, owner: str | None) -> MemoryPublic:
    return _public(_visible(session.get(Memory, memory_id), owner, memory_id))


def update_memory(
    session: Session,
    memory_id: str,
    data: MemoryUpdate,
    *,
    owner: str | None,
    settings: MemorySettings,
) -> MemoryPublic:
    _check_size(data, settings)
    row = _visible(session.get(Memory, memory_id), owner, memory_id)
    for key, value in data.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(row, key, value)
    row.updated_at = datetime.now(UTC)
    session.add(row)
    session.flush()
    return _public(row)


def delete_memory(session: Session, memory_id: str, owner: str | None) -> None:
    session.delete(_visible(session.get(Memory, memory_id), owner, memory_id))


def list_memories(
    session: Session,
    *,
    owner: str | None,
    scope: str | None,
    subject: str | None,
    tag: str | None,
    limit: int,
    offset: int,
) -> tuple[list[MemoryPublic], int]:
    where: list[Any] = []
    if owner is not None:
        where.append(or_(col(Memory.owner) == owner, col(Memory.owner).is_(None)))
    if scope is not None:
        where.append(col(Memory.scope) == scope)
    if subject is not None:
        where.append(col(Memory.subject) == subject)
    if tag is not None:
        where.append(func.json_extract(Memory.tags, "$").like(f'%"{tag.lower()}"%'))
    rows, total = page(
        session, Memory, where, col(Memory.updated_at).desc(), limit=limit, offset=offset
    )
    return [_public(r) for r in rows], total


def fts_query(query: str, *, owner: str | None, scopes: list[tuple[str, str]] | None) -> str:
    """An FTS5 expression: any of the query's words (quoted, no operators), within the
    scopes and the owner's memories."""
    terms = [w for w in dict.fromkeys(words(query)) if w not in STOPWORDS][:32]
    if not terms:
        terms = list(dict.fromkeys(words(query)))[:32]
    if not terms:
        raise BadRequest("the query has no words to search for")
    expr = "(" + " OR ".join(f'"{t}"' for t in terms) + ")"
    if scopes is not None:
        keys = {scope_key(scope, subject, None).split()[0] for scope, subject in scopes}
        expr += " AND scope_key:(" + " OR ".join(sorted(keys)) + ")"
    if owner is not None:
        expr += f" AND scope_key:(onone OR {_token('o', owner)})"
    return expr


def _search_rows(
    session: Session,
    *,
    query: str,
    owner: str | None,
    scopes: list[tuple[str, str]] | None,
    limit: int,
) -> list[tuple[Memory, float]]:
    if session.get_bind().dialect.name != "sqlite":
        return _search_rows_portable(session, query=query, owner=owner, scopes=scopes, limit=limit)
    rows = session.execute(
        text(
            "SELECT rowid, bm25(memories_fts, 1.0, 0.4, 0.0) AS rank FROM memories_fts "
            "WHERE memories_fts MATCH :q ORDER BY rank LIMIT :n"
        ),
        {"q": fts_query(query, owner=owner, scopes=scopes), "n": limit * 4},
    ).all()
    if not rows:
        return []
    rank = {r[0]: -float(r[1]) for r in rows}
    rowid: Any = literal_column("memories.rowid")
    found = session.execute(select(rowid, Memory).where(rowid.in_(list(rank)))).all()
    scored = [(m, rank[rid] * (0.75 + 0.5 * m.importance)) for rid, m in found]
    scored.sort(key=lambda x: x[1], reverse=True)
    return scored[:limit]


def _search_rows_portable(
    session: Session,
    *,
    query: str,
    owner: str | None,
    scopes: list[tuple[str, str]] | None,
    limit: int,
) -> list[tuple[Memory, float]]:
    """Without FTS5 (e.g. PostgreSQL): candidates by word match, scored by how many of the
    query's words they contain."""
    terms = [w for w in dict.fromkeys(words(query)) if w not in STOPWORDS][:16]
    if not terms:
        raise BadRequest("the query has no words to search for")
    where: list[Any] = [or_(*(col(Memory.text).ilike(f"%{t}%") for t in terms))]
    if owner is not None:
        where.append(or_(col(Memory.owner) == owner, col(Memory.owner).is_(None)))
    if scopes is not None:
        where.append(
            or_(*((col(Memory.scope) == s) & (col(Memory.subject) == subj) for s, subj in scopes))
        )
    rows = session.exec(select(Memory).where(*where).limit(2_000)).all()
    scored = [
        (m, sum(w in set(words(m.text)) for w in terms) * (0.75 + 0.5 * m.importance)) for m in rows
    ]
    scored.sort(key=lambda x: x[1], reverse=True)
    return [s for s in scored if s[1] > 0][:limit]


def search(
    session: Session,
    *,
    query: str,
    owner: str | None,
    user: str | None,
    session_id: str | None,
    include_global: bool,
    limit: int,
) -> SearchResults:
    """Best matches first. With ``user`` and/or ``session_id``, only those scopes (plus
    global memories unless ``include_global`` is false); with neither, every scope."""
    scopes: list[tuple[str, str]] | None = None
    if user is not None or session_id is not None:
        scopes = [("global", "")] if include_global else []
        if user is not None:
            scopes.append(("user", user))
        if session_id is not None:
            scopes.append(("session", session_id))
    hits = _search_rows(session, query=query, owner=owner, scopes=scopes, limit=limit)
    return SearchResults(
        query=query,
        data=[MemoryHit(memory=_public(m), score=round(score, 6)) for m, score in hits],
    )


# -- consolidation ---------------------------------------------------------------------------

CONSOLIDATE_PROMPT = (
    "You maintain long-term memory for an assistant. From the conversation below, extract "
    "the durable facts about the user, their preferences and the decisions made: things "
    "worth knowing in a later conversation. Skip small talk and anything only relevant to "
    "this moment. Each memory is one short, self-contained sentence. Reply with JSON only: "
    '{"memories": [{"text": "...", "kind": "fact|preference|decision", '
    '"importance": 0.0-1.0, "tags": ["..."]}]}. Reply {"memories": []} if there is nothing.'
)


@dataclass
class Consolidator:
    db: SliceDatabase
    sessions: SessionClient
    providers: ProvidersClient
    settings: MemorySettings
    model: str

    async def run(self, session_id: str, *, min_age_s: float | None = None) -> ConsolidationRun:
        """Turn a session's history since the last run into memories. Source messages are
        only read, never changed. The prompt and the model's output are recorded."""
        started = datetime.now(UTC)
        cursor = await self.db.run(lambda s: s.get(ConsolidationCursor, session_id), write=False)
        after = cursor.last_seq if cursor else 0
        info = await self.sessions.get_session(session_id)
        page = await self.sessions.list_messages(
            session_id, after_seq=after, limit=self.settings.consolidate_max_messages
        )
        age = self.settings.consolidate_min_age_s if min_age_s is None else min_age_s
        cutoff = started - timedelta(seconds=age)
        chosen = []
        for m in page.data:
            created = m.created_at if m.created_at.tzinfo else m.created_at.replace(tzinfo=UTC)
            if created > cutoff:
                break  # too recent: the conversation may still be going on
            chosen.append(m)
        run = ConsolidationRun(
            started_at=started,
            session_id=session_id,
            status="nothing_new",
            from_seq=after + 1,
            to_seq=after,
            model=self.model,
        )
        said = [m for m in chosen if m.role in ("user", "assistant") and m.content]
        if chosen:
            run.to_seq = chosen[-1].seq
        if said:
            transcript = "\n".join(f"{m.role}: {m.content}" for m in said)
            run.prompt = f"{CONSOLIDATE_PROMPT}\n\nConversation to consolidate:\n{transcript}"
            await self._extract(run, transcript, info.owner, session_id)
        elif chosen:
            run.status = "ok"  # only tool traffic: nothing to remember, cursor moves on
        run.finished_at = datetime.now(UTC)

        def save(s: Session) -> ConsolidationRun:
            s.add(run)
            if run.status in ("ok", "nothing_new") and run.to_seq > after:
                cur = s.get(ConsolidationCursor, session_id) or ConsolidationCursor(
                    session_id=session_id, updated_at=run.finished_at or started
                )
                cur.last_seq = run.to_seq
                cur.updated_at = run.finished_at or started
                s.add(cur)
            s.flush()
            return run

        return await self.db.run(save)

    async def _extract(
        self, run: ConsolidationRun, transcript: str, owner: str | None, session_id: str
    ) -> None:
        payload = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": CONSOLIDATE_PROMPT},
                {"role": "user", "content": f"Conversation to consolidate:\n{transcript}"},
            ],
            "response_format": {"type": "json_object"},
            "temperature": 0,
        }
        began = time.perf_counter()
        try:
            answer = await self.providers.chat_completions(payload, session_id=session_id)
        except SliceError as exc:
            run.status, run.error = "failed", exc.message[:1000]
            return
        run.cost_usd = answer.usage.cost
        content = (answer.choices[0].message.content or "") if answer.choices else ""
        run.output = content
        run.details = {"llm_ms": round((time.perf_counter() - began) * 1000, 1)}
        items = parse_memories(content)
        if items is None:
            run.status, run.error = "failed", "the model's answer was not the JSON asked for"
            return
        scope, subject = ("user", owner) if owner else ("session", session_id)
        created = merged = 0
        for item in items[:50]:
            try:
                data = MemoryCreate(
                    scope=scope,
                    subject=subject,
                    text=str(item.get("text", ""))[: self.settings.max_text_chars],
                    kind=str(item.get("kind") or "fact")[:16].lower(),
                    importance=min(1.0, max(0.0, float(item.get("importance", 0.5)))),
                    tags=[str(t)[:40] for t in (item.get("tags") or [])][: self.settings.max_tags],
                    source_session=session_id,
                    source_message=run.to_seq,
                )
            except (ValueError, TypeError):
                continue  # one malformed item does not spoil the rest

            def store(s: Session, data: MemoryCreate = data) -> bool:
                return create_memory(s, data, owner=owner, settings=self.settings, dedupe=True)[1]

            if await self.db.run(store):
                created += 1
            else:
                merged += 1
        run.status, run.created, run.merged = "ok", created, merged


def parse_memories(content: str) -> list[dict[str, Any]] | None:
    """The ``memories`` list from the model's answer (tolerating text around the JSON)."""
    start, end = content.find("{"), content.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(content[start : end + 1])
    except ValueError:
        return None
    items = data.get("memories") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return None
    return [i for i in items if isinstance(i, dict)]


def list_runs(
    session: Session, *, session_id: str | None, limit: int, offset: int
) -> tuple[list[ConsolidationPublic], int]:
    where = [] if session_id is None else [col(ConsolidationRun.session_id) == session_id]
    rows, total = page(
        session,
        ConsolidationRun,
        where,
        col(ConsolidationRun.id).desc(),
        limit=limit,
        offset=offset,
    )
    return [ConsolidationPublic.model_validate(r, from_attributes=True) for r in rows], total
