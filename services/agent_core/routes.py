"""The agent_core slice's HTTP routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.agent_core import service
from services.agent_core.deps import AgentDepsDep
from services.agent_core.schemas import TurnCreate, TurnPublic, TurnRecordsPublic
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
from services.kit.query import MAX_OFFSET

router = APIRouter(prefix="/v1/turns", tags=["agent"])


@router.post(
    "",
    responses=error_responses(
        NotFound, PayloadTooLarge, UpstreamError, ServiceUnavailable, DeadlineExceeded
    ),
)
async def create_turn(body: TurnCreate, deps: AgentDepsDep) -> TurnPublic:
    """Run one chat turn in a session (a new session when none is given)."""
    try:
        turn = await service.run_turn(
            data=body,
            settings=deps.ctx.settings.agent_core,
            sessions=deps.sessions,
            providers=deps.providers,
            db=deps.ctx.db,
        )
    except SliceError as exc:
        deps.metrics.turns.labels(exc.code).inc()
        raise
    deps.metrics.turns.labels("ok").inc()
    deps.metrics.latency.observe(turn.latency_ms / 1000)
    return turn


@router.get("")
def read_turns(
    db: DbSessionDep,
    session_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> TurnRecordsPublic:
    data, count = service.list_turns(session=db, session_id=session_id, limit=limit, offset=offset)
    return TurnRecordsPublic(data=data, count=count)
