"""One pure-ASGI middleware for every request: request id, deadline, body limit, metrics, log.

Pure ASGI (not BaseHTTPMiddleware) because it sits on every hop of every chat turn.
"""

from __future__ import annotations

import json
import time

import structlog
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kit.context import (
    DEADLINE_HEADER,
    clean_request_id,
    deadline_var,
    request_id_var,
)
from services.kit.errors import envelope
from services.kit.metrics import ServiceMetrics

QUIET_PATHS = frozenset({"/health", "/ready", "/metrics"})
MAX_DEADLINE_MS = 86_400_000  # a day: more is a mistake, not a budget
log = structlog.get_logger("http")


def parse_deadline_ms(raw: bytes) -> int | None:
    """An ``X-Deadline-Ms`` value: 1 to MAX_DEADLINE_MS whole milliseconds, else None."""
    text = raw.strip()
    if not text.isdigit() or len(text) > 12:
        return None
    value = int(text)
    return value if 1 <= value <= MAX_DEADLINE_MS else None


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: ServiceMetrics,
        max_body_bytes: int,
        default_timeout_s: float,
    ) -> None:
        # Bodies without Content-Length are counted while read by Starlette's limiter, whose
        # 413 reaches the app's error handlers and so gets the envelope too.
        self.app = RequestBodyLimitMiddleware(app, max_body_size=max_body_bytes)
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.default_timeout_s = default_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers = dict(scope["headers"])
        rid = clean_request_id(headers.get(b"x-request-id", b"").decode("latin-1"))
        budget = self.default_timeout_s
        raw_deadline = headers.get(DEADLINE_HEADER.lower().encode())
        if raw_deadline is not None:
            deadline_ms = parse_deadline_ms(raw_deadline)
            if deadline_ms is None:
                token = request_id_var.set(rid)
                try:
                    await self._send_error(
                        send,
                        400,
                        "bad_request",
                        f"header {DEADLINE_HEADER}: must be a whole number of milliseconds "
                        f"from 1 to {MAX_DEADLINE_MS}",
                        [(b"x-request-id", rid.encode("latin-1"))],
                    )
                finally:
                    request_id_var.reset(token)
                return
            budget = min(budget, deadline_ms / 1000)
        rid_token = request_id_var.set(rid)
        dl_token = deadline_var.set(time.monotonic() + budget)
        status = 500
        started = False
        rid_header = (b"x-request-id", rid.encode("latin-1"))

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                nonlocal started
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            length = headers.get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                await self._send_error(
                    send_wrapper,
                    413,
                    "payload_too_large",
                    f"request body is larger than {self.max_body_bytes} bytes",
                )
            else:
                try:
                    await self.app(scope, receive, send_wrapper)
                except Exception:
                    # Never a traceback to the caller: log it here, where the request id is.
                    log.exception("unhandled_error", path=scope["path"])
                    if not started:
                        await self._send_error(
                            send_wrapper,
                            500,
                            "internal_error",
                            "internal error; see the service log",
                        )
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path_format", None) or "<unmatched>"
            self.metrics.observe(scope["method"], template, status, elapsed)
            path = scope["path"]
            if path not in QUIET_PATHS or status >= 400:
                log.info(
                    "request",
                    method=scope["method"],
                    path=path,
                    route=template,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
            request_id_var.reset(rid_token)
            deadline_var.reset(dl_token)

    async def _send_error(
        self,
        send: Send,
        status: int,
        code: str,
        message: str,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        body = json.dumps(envelope(code, message, request_id_var.get())).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *(extra_headers or []),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
