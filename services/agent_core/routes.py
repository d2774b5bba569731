"""The agent_core slice's HTTP routes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query

from services.agent_core import service
from services.agent_core.schemas import TurnCreate, TurnPublic, TurnRecordsPublic
from services.kit.app import DbSessionDep, get_slice
from services.kit.errors import (
    DeadlineExceeded,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    UpstreamError,
    error_responses,
)

if TYPE_CHECKING:
    from services.agent_core.slice import AgentCoreSlice

router = APIRouter(prefix="/v1/turns", tags=["agent"])


def get_agent(slice_: Annotated[object, Depends(get_slice)]) -> AgentCoreSlice:
    return slice_  # type: ignore[return-value]


@router.post("", responses=error_responses(
    NotFound, PayloadTooLarge, UpstreamError, ServiceUnavailable, DeadlineExceeded))
async def create_turn(body: TurnCreate, agent: Annotated[AgentCoreSlice, Depends(get_agent)]
                      ) -> TurnPublic:
    """Run one chat turn in a session (a new session when none is given)."""
    ctx = agent.context
    return await service.run_turn(
        data=body, settings=ctx.settings.agent_core, sessions=agent.sessions,
        providers=agent.providers, db=ctx.db,
    )


@router.get("")
def read_turns(
    db: DbSessionDep,
    session_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> TurnRecordsPublic:
    data, count = service.list_turns(session=db, session_id=session_id, limit=limit,
                                     offset=offset)
    return TurnRecordsPublic(data=data, count=count)
