"""What agent_core's routes need, built at start-up (kept apart from slice.py to avoid a cycle)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry, Counter, Histogram

from services.kit.metrics import LATENCY_BUCKETS
from services.kit.slice_base import SliceContext
from services.memory.client import MemoryClient
from services.providers.client import ProvidersClient
from services.session.client import SessionClient
from services.skills.client import SkillsClient
from services.tools.client import ToolsClient


@dataclass
class AgentDeps:
    ctx: SliceContext
    sessions: SessionClient
    providers: ProvidersClient
    tools: ToolsClient
    memory: MemoryClient
    skills: SkillsClient
    metrics: TurnMetrics


class TurnMetrics:
    """agent_core's own Prometheus metrics, in the app's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.turns = Counter(
            "agent_turns_total", "Chat turns by outcome", ["outcome"], registry=registry
        )
        self.stops = Counter(
            "agent_turn_stops_total",
            "Turns by what ended them (final_answer or a bound)",
            ["reason"],
            registry=registry,
        )
        self.latency = Histogram(
            "agent_turn_duration_seconds",
            "Whole-turn latency",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


async def get_agent_deps(request: Request) -> AgentDeps:
    deps: AgentDeps = request.app.state.slice.deps
    return deps


AgentDepsDep = Annotated[AgentDeps, Depends(get_agent_deps)]
