"""openrouter_gateway: RefactorBot's library for OpenRouter and OpenAI-compatible upstreams."""

from openrouter_gateway.catalog import ModelPrice, compute_cost, load_snapshot, price_of
from openrouter_gateway.client import ChatResult, OpenRouterClient, Usage
from openrouter_gateway.errors import (
    AuthenticationError,
    BadGatewayError,
    BadRequestError,
    InsufficientCreditsError,
    NotFoundError,
    OpenRouterError,
    OverloadedError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ProviderTimeoutError,
    RateLimitError,
    RequestTimeoutError,
    ServiceUnavailableError,
    StreamingNotSupportedError,
    UnprocessableError,
    UpstreamConnectionError,
    UpstreamServerError,
    error_from_response,
)

__all__ = [
    "AuthenticationError", "BadGatewayError", "BadRequestError", "ChatResult",
    "InsufficientCreditsError", "ModelPrice", "NotFoundError", "OpenRouterClient",
    "OpenRouterError", "OverloadedError", "PayloadTooLargeError", "PermissionDeniedError",
    "ProviderTimeoutError", "RateLimitError", "RequestTimeoutError", "ServiceUnavailableError",
    "StreamingNotSupportedError", "UnprocessableError", "UpstreamConnectionError",
    "UpstreamServerError", "Usage", "compute_cost", "error_from_response", "load_snapshot",
    "price_of",
]
