"""Typed client other services use to call agent_core."""

from __future__ import annotations

from services.agent_core.schemas import TurnCreate, TurnPublic
from services.kit.client import SliceClient


class AgentCoreClient(SliceClient):
    service = "agent_core"

    async def run_turn(self, data: TurnCreate) -> TurnPublic:
        """One chat turn; not retried (it calls the LLM and appends to the session)."""
        return await self.post_model(TurnPublic, "/v1/turns", data)
