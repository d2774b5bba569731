"""Typed client other services use to call the session slice. ``owner`` (an API key id)
makes every call act for that key: another key's sessions are 404."""

from __future__ import annotations

from services.kit.client import SliceClient
from services.kit.context import OWNER_HEADER
from services.session.schemas import (
    IDEMPOTENCY_HEADER,
    MessageCreate,
    MessagesAppend,
    MessagesPublic,
    SessionCreate,
    SessionPublic,
)


def _owner(owner: str | None) -> dict[str, str]:
    return {OWNER_HEADER: owner} if owner else {}


class SessionClient(SliceClient):
    service = "session"

    async def create_session(
        self, data: SessionCreate, *, owner: str | None = None
    ) -> SessionPublic:
        return await self.post_model(SessionPublic, "/v1/sessions", data, headers=_owner(owner))

    async def get_session(self, session_id: str, *, owner: str | None = None) -> SessionPublic:
        return await self.get_model(
            SessionPublic, f"/v1/sessions/{session_id}", headers=_owner(owner)
        )

    async def history(
        self, session_id: str, *, tail: int, owner: str | None = None
    ) -> MessagesPublic:
        """The last ``tail`` live messages of a session, oldest first."""
        return await self.get_model(
            MessagesPublic,
            f"/v1/sessions/{session_id}/messages",
            params={"tail": tail, "limit": tail},
            headers=_owner(owner),
        )

    async def list_messages(
        self, session_id: str, *, after_seq: int = 0, limit: int = 100, owner: str | None = None
    ) -> MessagesPublic:
        return await self.get_model(
            MessagesPublic,
            f"/v1/sessions/{session_id}/messages",
            params={"after_seq": after_seq, "limit": limit},
            headers=_owner(owner),
        )

    async def append(
        self,
        session_id: str,
        messages: list[MessageCreate],
        *,
        owner: str | None = None,
        idempotency_key: str | None = None,
    ) -> MessagesPublic:
        """Append atomically. With an idempotency key the call is safe to retry (and is
        retried on connection failures): a repeat stores nothing."""
        headers = _owner(owner)
        if idempotency_key:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        return await self.post_model(
            MessagesPublic,
            f"/v1/sessions/{session_id}/messages",
            MessagesAppend(messages=messages),
            headers=headers,
            idempotent=idempotency_key is not None,
        )
