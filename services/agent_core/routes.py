"""The agent_core slice's HTTP routes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from services.agent_core import service
from services.agent_core.deps import AgentDeps, AgentDepsDep
from services.agent_core.loop import Emit
from services.agent_core.schemas import TurnCreate, TurnDetail, TurnPublic, TurnRecordsPublic
from services.kit.app import DbSessionDep
from services.kit.errors import (
    DeadlineExceeded,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    SliceError,
    UpstreamError,
    error_responses,
)
from services.kit.query import PageDep

router = APIRouter(prefix="/v1/turns", tags=["agent"])
log = structlog.get_logger("agent_core")


_background: set[asyncio.Task[None]] = set()
KEEPALIVE_S = 15.0


async def _run(body: TurnCreate, deps: AgentDeps, emit: Emit | None) -> TurnPublic:
    try:
        turn = await service.run_turn(
            data=body,
            settings=deps.ctx.settings.agent_core,
            sessions=deps.sessions,
            providers=deps.providers,
            tools=deps.tools,
            db=deps.ctx.db,
            emit=emit,
            memory=deps.memory,
            skills=deps.skills,
        )
    except SliceError as exc:
        deps.metrics.turns.labels(exc.code).inc()
        raise
    deps.metrics.turns.labels("ok").inc()
    deps.metrics.stops.labels(turn.stop_reason).inc()
    deps.metrics.latency.observe(turn.latency_ms / 1000)
    return turn


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def _progress(body: TurnCreate, deps: AgentDeps) -> AsyncIterator[bytes]:
    """The turn's progress as Server-Sent Events. The turn runs to its end even if the
    caller leaves, so the session stays whole."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=1_000)
    gone = False

    async def emit(event: str, data: dict[str, Any]) -> None:
        if not gone:
            await queue.put(sse(event, data))  # a slow reader slows the turn, bounded

    async def runner() -> None:
        try:
            turn = await _run(body, deps, emit)
            await emit("final", turn.model_dump(mode="json"))
        except SliceError as exc:
            await emit(
                "error", {"code": exc.code, "message": exc.message, "status": exc.status_code}
            )
        except Exception:
            log.exception("turn_failed")
            await emit(
                "error", {"code": "internal_error", "message": "the turn failed", "status": 500}
            )
        finally:
            if not gone:
                await queue.put(None)

    task = asyncio.create_task(runner())
    _background.add(task)
    task.add_done_callback(_background.discard)
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if item is None:
                break
            yield item
    finally:
        gone = True
        while not queue.empty():
            queue.get_nowait()


@router.post(
    "",
    response_model=TurnPublic,
    responses={
        **error_responses(
            NotFound, PayloadTooLarge, UpstreamError, ServiceUnavailable, DeadlineExceeded
        ),
        200: {"content": {"text/event-stream": {}}},
    },
)
async def create_turn(body: TurnCreate, deps: AgentDepsDep) -> Any:
    """Run one turn of the agent loop in a session (a new session when none is given).

    With ``stream: true`` the answer is Server-Sent Events: ``turn.started``, ``plan``,
    ``llm.started``, ``delta`` (text as it is generated), ``tool.started``,
    ``tool.finished``, ``reflection``, ``stopped``, then ``final`` (the turn, as without
    streaming) or ``error``."""
    if body.stream:
        return StreamingResponse(
            _progress(body, deps),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return await _run(body, deps, None)


@router.get("/{turn_id}", responses=error_responses(NotFound))
def read_turn(
    turn_id: Annotated[str, Path(pattern=r"^[a-f0-9]{32}$")], db: DbSessionDep
) -> TurnDetail:
    """A turn and its trace: each plan, LLM call, tool call, review and the stop, with
    tokens, cost and timings."""
    return service.get_turn(session=db, turn_id=turn_id)


@router.get("")
def read_turns(
    db: DbSessionDep,
    page: PageDep,
    session_id: Annotated[str | None, Query(max_length=64)] = None,
) -> TurnRecordsPublic:
    data, count = service.list_turns(
        session=db, session_id=session_id, limit=page.limit, offset=page.offset
    )
    return TurnRecordsPublic(data=data, count=count)
