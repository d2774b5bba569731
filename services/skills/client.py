"""Typed client the agent uses to pick skills for a turn."""

from __future__ import annotations

from services.kit.client import SliceClient
from services.skills.schemas import SelectRequest, SelectResult


class SkillsClient(SliceClient):
    service = "skills"

    async def select(self, request: SelectRequest) -> SelectResult:
        # a read with no side effects: safe to retry
        return await self.post_model(SelectResult, "/v1/skills/select", request, idempotent=True)
