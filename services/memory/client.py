"""Typed client other services (the agent) use to call the memory slice."""

from __future__ import annotations

from typing import Any

from services.kit.client import SliceClient
from services.kit.context import OWNER_HEADER
from services.memory.schemas import MemoryCreate, MemoryPublic, SearchResults


class MemoryClient(SliceClient):
    service = "memory"

    async def search(
        self,
        query: str,
        *,
        owner: str | None,
        user: str | None = None,
        session_id: str | None = None,
        limit: int = 10,
    ) -> SearchResults:
        params: dict[str, Any] = {"q": query[:2_000], "limit": limit}
        if user:
            params["user"] = user
        if session_id:
            params["session_id"] = session_id
        return await self.get_model(
            SearchResults,
            "/v1/memories/search",
            params=params,
            headers={OWNER_HEADER: owner} if owner else {},
        )

    async def remember(self, data: MemoryCreate, *, owner: str | None) -> MemoryPublic:
        """Store (or merge into a near-duplicate); not retried."""
        return await self.post_model(
            MemoryPublic,
            "/v1/memories?dedupe=true",
            data,
            headers={OWNER_HEADER: owner} if owner else {},
        )
