"""A chat turn: load history, ask the LLM, store the exchange, record the turn."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlmodel import Session, col, select

from services.agent_core.config import AgentCoreSettings
from services.agent_core.loop import AgentLoop, Emit, LoopResult, Step, trim_history
from services.agent_core.models import Turn, TurnStep
from services.agent_core.schemas import (
    StepPublic,
    TurnCreate,
    TurnDetail,
    TurnPublic,
    TurnRecordPublic,
    TurnUsage,
)
from services.kit.database import SliceDatabase, page
from services.kit.errors import NotFound, PayloadTooLarge, SliceError
from services.kit.outbox import add_event
from services.memory.client import MemoryClient
from services.providers.client import ProvidersClient
from services.session.client import SessionClient
from services.session.schemas import MessageCreate, MessagePublic, SessionCreate
from services.skills.client import SkillsClient
from services.tools.client import ToolsClient

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


def build_context(
    *, system_prompt: str, history: list[dict[str, Any]], budget_tokens: int
) -> list[dict[str, Any]]:
    """System prompt, then the history (oldest first) trimmed to the token budget."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.extend(trim_history(history, budget_tokens))
    return messages


def _stored(message: dict[str, Any]) -> MessageCreate:
    return MessageCreate.model_validate(
        {k: message[k] for k in ("role", "content", "tool_calls", "tool_call_id") if message.get(k)}
        | {"content": message.get("content")}
    )


async def run_turn(
    *,
    data: TurnCreate,
    settings: AgentCoreSettings,
    sessions: SessionClient,
    providers: ProvidersClient,
    tools: ToolsClient | None,
    db: SliceDatabase,
    emit: Emit | None = None,
    memory: MemoryClient | None = None,
    skills: SkillsClient | None = None,
) -> TurnPublic:
    """Run one turn end to end: the agent loop, then the exchange stored in the session
    (user message, tool calls and results, reply) and the turn and its trace recorded."""
    if len(data.message) > settings.max_message_chars:
        raise PayloadTooLarge(f"message is longer than {settings.max_message_chars} characters")
    started = time.perf_counter()
    turn_id = uuid.uuid4().hex
    if data.session_id is None:
        session_id = (
            await sessions.create_session(
                SessionCreate(title=data.message[:60]), owner=data.api_key_id
            )
        ).id
        history: list[dict[str, Any]] = []
    else:
        session_id = data.session_id
        if settings.max_history_messages:
            stored = await sessions.history(
                session_id, tail=settings.max_history_messages, owner=data.api_key_id
            )
            history = [to_openai(m) for m in stored.data]
        else:
            history = []
            await sessions.get_session(session_id, owner=data.api_key_id)
    if data.messages is not None:
        history = [m.model_dump(exclude_none=True) for m in data.messages]
    context = build_context(
        system_prompt=settings.system_prompt,
        history=history,
        budget_tokens=settings.history_token_budget,
    )
    history_count = len(context) - (1 if settings.system_prompt else 0)
    if emit is not None:
        await emit("turn.started", {"turn_id": turn_id, "session_id": session_id})
    loop = AgentLoop(
        settings=settings,
        providers=providers,
        tools=tools,
        turn_id=turn_id,
        session_id=session_id,
        api_key_id=data.api_key_id,
        emit=emit,
        stream_text=data.stream,
        memory=memory if settings.memory_enabled else None,
        skills=skills if settings.skills_enabled else None,
    )
    try:
        result = await loop.run(context, data.message)
    except SliceError as exc:
        code, message = exc.code, exc.message
        await db.run(
            lambda s: _record(
                s, turn_id, session_id, history_count, started, loop.steps,
                outcome=code, error=message,
            )
        )  # fmt: skip
        raise
    usage = TurnUsage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
        cost_usd=result.cost_usd,
    )
    exchange = [
        MessageCreate(role="user", content=data.message),
        *(_stored(m) for m in result.new_messages),
        MessageCreate(role="assistant", content=result.reply),
    ]
    # The exchange goes to the session and the turn to our own table at the same time:
    # two databases, two fsyncs, no reason to wait for one before starting the other.
    appended, latency = await asyncio.gather(
        # keyed by the turn: a retried append cannot store the exchange twice
        sessions.append(
            session_id, exchange, owner=data.api_key_id, idempotency_key=f"turn-{turn_id}"
        ),
        db.run(
            lambda s: _record(
                s,
                turn_id,
                session_id,
                history_count,
                started,
                result.steps,
                outcome="ok",
                model=result.model,
                usage=usage,
                result=result,
            )
        ),
        return_exceptions=True,
    )
    if isinstance(appended, BaseException):
        # The reply was paid for but not stored: say so in our record, then fail the turn.
        error = appended.message if isinstance(appended, SliceError) else repr(appended)
        await db.run(lambda s: _mark_failed(s, turn_id, "store_failed", error))
        raise appended
    if isinstance(latency, BaseException):
        # The exchange is stored, so the turn succeeded; failing it now would invite a retry
        # and a duplicate. Our own record is what is missing: log it loudly.
        log.error("turn_record_failed", turn_id=turn_id, error=repr(latency))
        latency = round((time.perf_counter() - started) * 1000, 3)
    return TurnPublic(
        turn_id=turn_id,
        session_id=session_id,
        reply=result.reply,
        model=result.model,
        usage=usage,
        latency_ms=latency,
        stop_reason=result.stop_reason,
        iterations=result.iterations,
        tool_calls=result.tool_calls,
    )


def _record(
    session: Session,
    turn_id: str,
    session_id: str,
    history: int,
    started: float,
    steps: list[Step],
    *,
    outcome: str,
    model: str | None = None,
    usage: TurnUsage | None = None,
    error: str | None = None,
    result: LoopResult | None = None,
) -> float:
    """The turn and its trace, in one transaction."""
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
            stop_reason=result.stop_reason if result else None,
            iterations=result.iterations if result else sum(1 for s in steps if s.kind == "llm"),
            tool_calls=result.tool_calls if result else sum(1 for s in steps if s.kind == "tool"),
        )
    )
    kind = "agent.turn_completed" if outcome == "ok" else "agent.turn_failed"
    add_event(
        session,
        kind,
        kind,
        {
            "turn_id": turn_id,
            "session_id": session_id,
            "outcome": outcome,
            "stop_reason": result.stop_reason if result else None,
            "iterations": result.iterations if result else None,
            "tool_calls": result.tool_calls if result else None,
            "prompt_tokens": usage.prompt_tokens if usage else 0,
            "completion_tokens": usage.completion_tokens if usage else 0,
            "cost_usd": usage.cost_usd if usage else 0.0,
            "latency_ms": latency,
            "error": error[:200] if error else None,
        },
    )
    session.add_all(
        TurnStep(
            turn_id=turn_id,
            seq=st.seq,
            kind=st.kind,
            name=(st.name or "")[:200] or None,
            outcome=st.outcome[:64],
            detail=st.detail,
            tokens=st.tokens,
            cost_usd=st.cost_usd,
            started_ms=st.started_ms,
            duration_ms=st.duration_ms,
        )
        for st in steps
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
    rows, count = page(
        session, Turn, where, col(Turn.created_at).desc(), limit=limit, offset=offset
    )
    return [TurnRecordPublic.model_validate(r, from_attributes=True) for r in rows], count


def get_turn(*, session: Session, turn_id: str) -> TurnDetail:
    """A turn's record and its whole trace."""
    turn = session.get(Turn, turn_id)
    if turn is None:
        raise NotFound(f"turn {turn_id!r} not found")
    steps = session.exec(
        select(TurnStep).where(TurnStep.turn_id == turn_id).order_by(col(TurnStep.seq))
    ).all()
    return TurnDetail(
        turn=TurnRecordPublic.model_validate(turn, from_attributes=True),
        steps=[StepPublic.model_validate(st, from_attributes=True) for st in steps],
    )
