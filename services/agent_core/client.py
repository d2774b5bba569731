"""Typed client other services use to call agent_core."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from services.agent_core.schemas import TurnCreate, TurnPublic
from services.kit.client import SliceClient


class AgentCoreClient(SliceClient):
    service = "agent_core"
    default_timeout_s = 180.0  # a turn may take as long as the slice allows a request

    async def run_turn(self, data: TurnCreate) -> TurnPublic:
        """One chat turn; not retried (it calls the LLM and appends to the session)."""
        return await self.post_model(
            TurnPublic, "/v1/turns", data.model_copy(update={"stream": False})
        )

    async def open_turn_stream(self, data: TurnCreate) -> AsyncIterator[bytes]:
        """Start a streamed turn; an error before the stream began raises here, with its
        status. Returns the Server-Sent Events' bytes as they come."""
        stack = contextlib.AsyncExitStack()
        resp = await stack.enter_async_context(
            self.stream(
                "POST",
                "/v1/turns",
                json_body=data.model_copy(update={"stream": True}).model_dump(mode="json"),
            )
        )

        async def relay() -> AsyncIterator[bytes]:
            async with stack:
                async for piece in resp.content.iter_any():
                    yield piece

        return relay()
