"""Typed client other services (the agent) use to call the tools slice."""

from __future__ import annotations

import time
from typing import Any

from services.kit.client import SliceClient
from services.tools.schemas import OpenAIToolsPublic, ToolCallRequest, ToolCallResult


class ToolsClient(SliceClient):
    service = "tools"
    cache_s = 2.0  # tool definitions change rarely; a disabled tool is refused anyway

    _cached: tuple[float, list[dict[str, Any]]] | None = None

    async def openai_tools(self) -> list[dict[str, Any]]:
        """The enabled tools' definitions (cached for ``cache_s`` seconds)."""
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < self.cache_s:
            return self._cached[1]
        got = await self.get_model(OpenAIToolsPublic, "/v1/tools/openai")
        tools = [t.model_dump() for t in got.tools]
        self._cached = (now, tools)
        return tools

    async def call(self, name: str, request: ToolCallRequest) -> ToolCallResult:
        return await self.post_model(ToolCallResult, f"/v1/tools/{name}/call", request)
