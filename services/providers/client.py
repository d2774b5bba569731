"""Typed client other services use to call the providers slice."""

from __future__ import annotations

from typing import Any

from services.kit.client import SliceClient
from services.providers.schemas import API_KEY_ID_HEADER, SESSION_HEADER, UsagesPublic


class ProvidersClient(SliceClient):
    service = "providers"

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

    async def usage(self, *, session_id: str | None = None, limit: int = 100) -> UsagesPublic:
        params: dict[str, Any] = {"limit": limit}
        if session_id:
            params["session_id"] = session_id
        return await self.get_model(UsagesPublic, "/v1/usage", params=params)
