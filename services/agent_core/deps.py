"""What agent_core's routes need, built at start-up (kept apart from slice.py to avoid a cycle)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.kit.slice_base import SliceContext
from services.providers.client import ProvidersClient
from services.session.client import SessionClient


@dataclass
class AgentDeps:
    ctx: SliceContext
    sessions: SessionClient
    providers: ProvidersClient


def get_agent_deps(request: Request) -> AgentDeps:
    deps: AgentDeps = request.app.state.slice.deps
    return deps


AgentDepsDep = Annotated[AgentDeps, Depends(get_agent_deps)]
