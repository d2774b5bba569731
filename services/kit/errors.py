"""Errors that carry their own HTTP status, and the one envelope every error is sent in.

    SliceError                 500 internal_error (base)
    ├── BadRequest             400 bad_request
    ├── Unauthorized           401 unauthorized
    ├── Forbidden              403 forbidden
    ├── NotFound               404 not_found
    ├── Conflict               409 conflict
    ├── PayloadTooLarge        413 payload_too_large
    ├── Unprocessable          422 validation_error
    ├── TooManyRequests        429 rate_limited
    ├── UpstreamError          502 upstream_error
    ├── ServiceUnavailable     503 service_unavailable
    └── DeadlineExceeded       504 deadline_exceeded

The envelope: ``{"error": {"code", "message", "request_id", "details"?}}``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class SliceError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        code: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code


class BadRequest(SliceError):
    status_code = 400
    code = "bad_request"


class Unauthorized(SliceError):
    status_code = 401
    code = "unauthorized"


class Forbidden(SliceError):
    status_code = 403
    code = "forbidden"


class NotFound(SliceError):
    status_code = 404
    code = "not_found"


class Conflict(SliceError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(SliceError):
    status_code = 413
    code = "payload_too_large"


class Unprocessable(SliceError):
    status_code = 422
    code = "validation_error"


class TooManyRequests(SliceError):
    status_code = 429
    code = "rate_limited"


class UpstreamError(SliceError):
    status_code = 502
    code = "upstream_error"


class ServiceUnavailable(SliceError):
    status_code = 503
    code = "service_unavailable"


class DeadlineExceeded(SliceError):
    status_code = 504
    code = "deadline_exceeded"


# The schema of the envelope, for OpenAPI.
class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable error code")
    message: str = Field(description="What went wrong, for a person")
    request_id: str | None = Field(None, description="The X-Request-ID of the failed request")
    details: Any = Field(None, description="Per-field problems for validation errors")


class ErrorEnvelope(BaseModel):
    error: ErrorBody


def envelope(
    code: str, message: str, request_id: str | None, details: Any = None
) -> dict[str, Any]:
    """The JSON body of every error response."""
    body: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if details is not None:
        body["details"] = details
    return {"error": body}


def error_responses(*errors: type[SliceError]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route, so the OpenAPI contract shows its errors."""
    return {e.status_code: {"description": e.code, "model": ErrorEnvelope} for e in errors}
