"""Typed client other services use to call the providers slice."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from openrouter_gateway import OpenRouterError
from openrouter_gateway.streaming import StreamAccumulator, iter_sse, parse_chunk
from services.kit.client import SliceClient
from services.kit.errors import UpstreamError
from services.providers.schemas import API_KEY_ID_HEADER, SESSION_HEADER, UsagesPublic


class ProvidersClient(SliceClient):
    service = "providers"
    default_timeout_s = 150.0  # an LLM call may take as long as the slice allows a request

    async def chat_completions(
        self,
        payload: dict[str, Any],
        *,
        session_id: str | None = None,
        api_key_id: str | None = None,
    ) -> dict[str, Any]:
        """An OpenAI-shaped completion; never retried (it costs money)."""
        headers = {
            k: v for k, v in ((SESSION_HEADER, session_id), (API_KEY_ID_HEADER, api_key_id)) if v
        }
        body: dict[str, Any] = await self.request(
            "POST", "/v1/chat/completions", json_body=payload, headers=headers
        )
        return body

    async def stream_chat_completions(
        self,
        payload: dict[str, Any],
        *,
        on_text: Callable[[str], Awaitable[None]],
        session_id: str | None = None,
        api_key_id: str | None = None,
    ) -> dict[str, Any]:
        """Stream a completion, handing each piece of text to ``on_text`` as it comes, and
        return the assembled ``chat.completion`` body. A mid-stream error raises as an
        UpstreamError (or the status the upstream gave)."""
        headers = {
            k: v for k, v in ((SESSION_HEADER, session_id), (API_KEY_ID_HEADER, api_key_id)) if v
        }
        acc = StreamAccumulator()
        async with self.stream(
            "POST",
            "/v1/chat/completions",
            json_body={**payload, "stream": True},
            headers=headers,
        ) as resp:
            try:
                async for ev in iter_sse(resp.content.iter_any()):
                    if ev.data is None:
                        continue
                    if ev.is_done:
                        break
                    chunk = parse_chunk(ev.data)
                    acc.add(chunk)
                    for choice in chunk.get("choices") or []:
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            await on_text(text)
            except OpenRouterError as exc:
                raise UpstreamError(f"LLM stream failed: {exc.message}") from exc
            except aiohttp.ClientPayloadError as exc:
                raise UpstreamError("the LLM stream broke off") from exc
        return acc.result()

    async def usage(self, *, session_id: str | None = None, limit: int = 100) -> UsagesPublic:
        params: dict[str, Any] = {"limit": limit}
        if session_id:
            params["session_id"] = session_id
        return await self.get_model(UsagesPublic, "/v1/usage", params=params)
