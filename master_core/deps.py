"""What master_core's routes need, built at start-up (kept apart from slice.py: no cycle)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from master_core.keys import KeyVerifier
from services.agent_core.client import AgentCoreClient
from services.kit.slice_base import SliceContext
from services.session.client import SessionClient


@dataclass
class MasterDeps:
    ctx: SliceContext
    keys: KeyVerifier
    agent: AgentCoreClient
    sessions: SessionClient
    own_status: Callable[[], Awaitable[Any]]


async def get_master_deps(request: Request) -> MasterDeps:
    deps: MasterDeps = request.app.state.slice.deps
    return deps


MasterDep = Annotated[MasterDeps, Depends(get_master_deps)]
