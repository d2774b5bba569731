"""Per-request context shared by logs, the client and the handlers: request id and deadline."""

from __future__ import annotations

import time
import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = "X-Request-ID"
DEADLINE_HEADER = "X-Deadline-Ms"  # remaining budget of the whole request, in milliseconds
INTERNAL_TOKEN_HEADER = "X-Internal-Token"  # noqa: S105 - a header name
CALLER_HEADER = "X-Caller"
OWNER_HEADER = "X-Owner"  # the API key id a request acts for; absent: the fleet itself

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
deadline_var: ContextVar[float | None] = ContextVar("deadline", default=None)  # monotonic


def new_request_id() -> str:
    return uuid.uuid4().hex


def clean_request_id(value: str | None) -> str:
    """Accept a caller's id when it is short and printable, otherwise make a new one."""
    if value and len(value) <= 128 and value.isascii() and value.isprintable():
        return value
    return new_request_id()


def remaining_s() -> float | None:
    """Seconds left before the current request's deadline, or None without one."""
    deadline = deadline_var.get()
    return None if deadline is None else deadline - time.monotonic()
