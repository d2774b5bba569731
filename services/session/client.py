"""Typed client other services use to call the session slice."""

from __future__ import annotations

from services.kit.client import SliceClient
from services.session.schemas import (
    MessageCreate,
    MessagesAppend,
    MessagesPublic,
    SessionCreate,
    SessionPublic,
)


class SessionClient(SliceClient):
    service = "session"

    async def create_session(self, data: SessionCreate) -> SessionPublic:
        return await self.post_model(SessionPublic, "/v1/sessions", data)

    async def get_session(self, session_id: str) -> SessionPublic:
        return await self.get_model(SessionPublic, f"/v1/sessions/{session_id}")

    async def history(self, session_id: str, *, tail: int) -> MessagesPublic:
        """The last ``tail`` messages of a session, oldest first."""
        return await self.get_model(
            MessagesPublic,
            f"/v1/sessions/{session_id}/messages",
            params={"tail": tail, "limit": tail},
        )

    async def list_messages(
        self, session_id: str, *, after_seq: int = 0, limit: int = 100
    ) -> MessagesPublic:
        return await self.get_model(
            MessagesPublic,
            f"/v1/sessions/{session_id}/messages",
            params={"after_seq": after_seq, "limit": limit},
        )

    async def append(self, session_id: str, messages: list[MessageCreate]) -> MessagesPublic:
        return await self.post_model(
            MessagesPublic, f"/v1/sessions/{session_id}/messages", MessagesAppend(messages=messages)
        )
