"""Errors from OpenRouter (or any OpenAI-compatible upstream), one class per status.

OpenRouterError                    base: status_code, code, message, metadata, retryable
├── BadRequestError                400
├── AuthenticationError            401 invalid or missing key
├── InsufficientCreditsError       402
├── PermissionDeniedError          403 e.g. moderation flagged the input
├── NotFoundError                  404 e.g. no endpoints for the model
├── RequestTimeoutError            408 retryable
├── PayloadTooLargeError           413
├── UnprocessableError             422
├── RateLimitError                 429 retryable; retry_after in seconds when given
├── UpstreamServerError            500
├── BadGatewayError                502 retryable
├── ServiceUnavailableError        503 retryable
├── ProviderTimeoutError           524 retryable
├── OverloadedError                529 retryable
├── UpstreamConnectionError        no (complete) HTTP answer: refused, timed out, dropped
└── StreamError                    a stream that is not valid SSE/JSON (502)

An error that arrives inside a stream (HTTP status already 200) is the class of its
``code`` with ``mid_stream=True``. ``retryable`` says whether the same request may be
sent again; a stream is only ever retried before any of it was passed on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any


class OpenRouterError(Exception):
    retryable = False
    attempts = 1  # how many times the call was sent before this error was raised
    default_status: int | None = None

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: Any = None,
        metadata: dict[str, Any] | None = None,
        retry_after: float | None = None,
        mid_stream: bool = False,
    ):
        super().__init__(message)
        self.mid_stream = mid_stream
        self.message = message
        self.status_code = status_code if status_code is not None else self.default_status
        self.code = code if code is not None else self.status_code
        self.metadata = metadata or {}
        self.retry_after = retry_after


def _status_class(name: str, status: int, retryable: bool = False) -> type[OpenRouterError]:
    return type(
        name,
        (OpenRouterError,),
        {"default_status": status, "retryable": retryable, "__module__": __name__},
    )


BadRequestError = _status_class("BadRequestError", 400)
AuthenticationError = _status_class("AuthenticationError", 401)
InsufficientCreditsError = _status_class("InsufficientCreditsError", 402)
PermissionDeniedError = _status_class("PermissionDeniedError", 403)
NotFoundError = _status_class("NotFoundError", 404)
RequestTimeoutError = _status_class("RequestTimeoutError", 408, True)
PayloadTooLargeError = _status_class("PayloadTooLargeError", 413)
UnprocessableError = _status_class("UnprocessableError", 422)
RateLimitError = _status_class("RateLimitError", 429, True)
UpstreamServerError = _status_class("UpstreamServerError", 500)
BadGatewayError = _status_class("BadGatewayError", 502, True)
ServiceUnavailableError = _status_class("ServiceUnavailableError", 503, True)
ProviderTimeoutError = _status_class("ProviderTimeoutError", 524, True)
OverloadedError = _status_class("OverloadedError", 529, True)
UpstreamConnectionError = _status_class("UpstreamConnectionError", 0, True)
StreamError = _status_class("StreamError", 502)
UpstreamConnectionError.default_status = None

BY_STATUS: dict[int, type[OpenRouterError]] = {
    cls.default_status: cls  # type: ignore[misc]
    for cls in (
        BadRequestError,
        AuthenticationError,
        InsufficientCreditsError,
        PermissionDeniedError,
        NotFoundError,
        RequestTimeoutError,
        PayloadTooLargeError,
        UnprocessableError,
        RateLimitError,
        UpstreamServerError,
        BadGatewayError,
        ServiceUnavailableError,
        ProviderTimeoutError,
        OverloadedError,
    )
}


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``Retry-After``: a number of seconds or an HTTP date."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_from_response(
    status: int, body: bytes | str | Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> OpenRouterError:
    """The typed error for an upstream answer ``{"error": {"code", "message", "metadata"}}``."""
    parsed: Any = body
    if isinstance(body, bytes | str):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    err = parsed.get("error") if isinstance(parsed, Mapping) else None
    if isinstance(err, Mapping):
        message = str(err.get("message") or f"HTTP {status}")
        code, metadata = err.get("code", status), err.get("metadata") or {}
    else:
        text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
        message, code, metadata = (text[:300] or f"HTTP {status}"), status, {}
    return error_class_for(status)(
        message,
        status_code=status,
        code=code,
        metadata=dict(metadata),
        retry_after=_retry_after(headers or {}),
    )


def error_class_for(status: int) -> type[OpenRouterError]:
    """The class for an HTTP status (unknown 5xx: server error, other: bad request)."""
    cls = BY_STATUS.get(status)
    if cls is None:
        cls = UpstreamServerError if status >= 500 else BadRequestError
    return cls
