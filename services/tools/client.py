"""Typed client other services (the agent) use to call the tools slice."""

from __future__ import annotations

from typing import Any

from services.kit.client import SliceClient
from services.tools.schemas import OpenAIToolsPublic, ToolCallRequest, ToolCallResult


class ToolsClient(SliceClient):
    service = "tools"

    async def openai_tools(self) -> list[dict[str, Any]]:
        got = await self.get_model(OpenAIToolsPublic, "/v1/tools/openai")
        return [t.model_dump() for t in got.tools]

    async def call(self, name: str, request: ToolCallRequest) -> ToolCallResult:
        return await self.post_model(ToolCallResult, f"/v1/tools/{name}/call", request)
