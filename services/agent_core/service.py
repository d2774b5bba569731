"""A chat turn: load history, ask the LLM, store the exchange, record the turn."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import func
from sqlmodel import Session, col, select

from services.agent_core.models import Turn
from services.agent_core.schemas import (
    TurnCreate,
    TurnPublic,
    TurnRecordPublic,
    TurnUsage,
)
from services.kit.config import AgentCoreSettings
from services.kit.database import SliceDatabase
from services.kit.errors import PayloadTooLarge, SliceError, UpstreamError
from services.providers.client import ProvidersClient
from services.session.client import SessionClient
from services.session.schemas import MessageCreate, MessagePublic, SessionCreate

log = structlog.get_logger("agent_core")
_OPENAI_FIELDS = ("name", "tool_call_id", "tool_calls")


def to_openai(message: MessagePublic) -> dict[str, Any]:
    """A stored message in the shape chat completions expect."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    for field in _OPENAI_FIELDS:
        value = getattr(message, field)
        if value:
            out[field] = value
    return out


def build_messages(
    *, system_prompt: str, history: list[MessagePublic], user_message: str
) -> list[dict[str, Any]]:
    """System prompt, then the history oldest first, then the new user message."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.extend(to_openai(m) for m in history)
    messages.append({"role": "user", "content": user_message})
    return messages


def reply_text(completion: dict[str, Any]) -> str:
    """The assistant's text from a completion, or an UpstreamError if it has none."""
    try:
        content = completion["choices"][0]["message"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise UpstreamError("the LLM returned no choices") from exc
    if not isinstance(content, str):
        raise UpstreamError("the LLM returned no text content")
    return content


async def run_turn(
    *,
    data: TurnCreate,
    settings: AgentCoreSettings,
    sessions: SessionClient,
    providers: ProvidersClient,
    db: SliceDatabase,
) -> TurnPublic:
    """Run one turn end to end; the user message and reply are stored together at the end."""
    if len(data.message) > settings.max_message_chars:
        raise PayloadTooLarge(f"message is longer than {settings.max_message_chars} characters")
    started = time.perf_counter()
    turn_id = uuid.uuid4().hex
    if data.session_id is None:
        session_id = (await sessions.create_session(SessionCreate(title=data.message[:60]))).id
        history: list[MessagePublic] = []
    else:
        session_id = data.session_id
        if settings.max_history_messages:
            history = (await sessions.history(session_id, tail=settings.max_history_messages)).data
        else:
            history = []
            await sessions.get_session(session_id)
    messages = build_messages(
        system_prompt=settings.system_prompt, history=history, user_message=data.message
    )
    try:
        completion = await providers.chat_completions(
            {"model": settings.model, "messages": messages},
            session_id=session_id,
            api_key_id=data.api_key_id,
        )
        reply = reply_text(completion)
    except SliceError as exc:
        code, message = exc.code, exc.message
        await db.run(
            lambda s: _record(
                s, turn_id, session_id, len(history), started, outcome=code, error=message
            )
        )
        raise
    usage = completion.get("usage") or {}
    turn_usage = TurnUsage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        total_tokens=int(usage.get("total_tokens") or 0),
        cost_usd=float(usage.get("cost") or 0.0),
    )
    model = str(completion.get("model") or settings.model)
    # The exchange goes to the session and the turn to our own table at the same time:
    # two databases, two fsyncs, no reason to wait for one before starting the other.
    stored, latency = await asyncio.gather(
        sessions.append(
            session_id,
            [
                MessageCreate(role="user", content=data.message),
                MessageCreate(role="assistant", content=reply),
            ],
        ),
        db.run(
            lambda s: _record(
                s,
                turn_id,
                session_id,
                len(history),
                started,
                outcome="ok",
                model=model,
                usage=turn_usage,
            )
        ),
        return_exceptions=True,
    )
    if isinstance(stored, BaseException):
        # The reply was paid for but not stored: say so in our record, then fail the turn.
        error = stored.message if isinstance(stored, SliceError) else repr(stored)
        await db.run(lambda s: _mark_failed(s, turn_id, "store_failed", error))
        raise stored
    if isinstance(latency, BaseException):
        # The exchange is stored, so the turn succeeded; failing it now would invite a retry
        # and a duplicate. Our own record is what is missing: log it loudly.
        log.error("turn_record_failed", turn_id=turn_id, error=repr(latency))
        latency = round((time.perf_counter() - started) * 1000, 3)
    return TurnPublic(
        turn_id=turn_id,
        session_id=session_id,
        reply=reply,
        model=model,
        usage=turn_usage,
        latency_ms=latency,
    )


def _record(
    session: Session,
    turn_id: str,
    session_id: str,
    history: int,
    started: float,
    *,
    outcome: str,
    model: str | None = None,
    usage: TurnUsage | None = None,
    error: str | None = None,
) -> float:
    latency = round((time.perf_counter() - started) * 1000, 3)
    session.add(
        Turn(
            id=turn_id,
            session_id=session_id,
            created_at=datetime.now(UTC),
            model=model,
            history_messages=history,
            latency_ms=latency,
            outcome=outcome,
            error=error[:500] if error else None,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            cost_usd=usage.cost_usd if usage else 0.0,
        )
    )
    return latency


def _mark_failed(session: Session, turn_id: str, outcome: str, error: str) -> None:
    turn = session.get(Turn, turn_id)
    if turn is not None:
        turn.outcome, turn.error = outcome, error[:500]


def list_turns(
    *, session: Session, session_id: str | None, limit: int, offset: int
) -> tuple[list[TurnRecordPublic], int]:
    """Recorded turns, newest first."""
    where = [] if session_id is None else [Turn.session_id == session_id]
    count = session.exec(select(func.count()).select_from(Turn).where(*where)).one()
    rows = session.exec(
        select(Turn).where(*where).order_by(col(Turn.created_at).desc()).offset(offset).limit(limit)
    ).all()
    return [TurnRecordPublic.model_validate(r, from_attributes=True) for r in rows], count
