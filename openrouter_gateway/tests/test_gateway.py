"""The OpenRouter client against the simulator (a real server on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web

from openrouter_gateway import (
    BadRequestError,
    NotFoundError,
    OpenRouterClient,
    RateLimitError,
    UpstreamConnectionError,
    compute_cost,
    error_from_response,
    price_of,
)
from openrouter_gateway.simulator import create_simulator_app
from services.kit.testing import fake_upstream, free_port, serve_app

HELLO = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]}


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    with serve_app(create_simulator_app()) as url:
        yield url + "/api/v1"


async def test_completion_shape_is_openrouters_and_deterministic(sim_url: str) -> None:
    async with OpenRouterClient(base_url=sim_url, api_key="sk-test") as client:
        first = await client.chat_completions(HELLO)
        again = await client.chat_completions(HELLO)
        other = await client.chat_completions(
            {**HELLO, "messages": [{"role": "user", "content": "Bye"}]}
        )
    body = first.body
    assert body["id"].startswith("gen-") and body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert "You said: Hello!" in body["choices"][0]["message"]["content"]
    assert first.generation_id == again.generation_id != other.generation_id
    assert body["choices"] == again.body["choices"]
    usage = first.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0
    assert usage.cost == pytest.approx(
        compute_cost("openai/gpt-4o-mini", usage.prompt_tokens, usage.completion_tokens)
    )
    assert usage.cost and usage.cost > 0


async def test_max_tokens_truncates_with_finish_reason_length(sim_url: str) -> None:
    async with OpenRouterClient(base_url=sim_url) as client:
        result = await client.chat_completions({**HELLO, "max_tokens": 3})
    assert result.body["choices"][0]["finish_reason"] == "length"
    assert result.usage.completion_tokens == 3


async def test_fallback_models_list(sim_url: str) -> None:
    async with OpenRouterClient(base_url=sim_url) as client:
        result = await client.chat_completions(
            {
                "models": ["nope/unknown", "anthropic/claude-3.5-haiku"],
                "messages": HELLO["messages"],
            }
        )
    assert result.model == "anthropic/claude-3.5-haiku"


@pytest.mark.parametrize(
    ("payload", "error", "text"),
    [
        ({**HELLO, "model": "nope/unknown"}, NotFoundError, "No endpoints found for nope/unknown"),
        ({"model": "openai/gpt-4o", "messages": []}, BadRequestError, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, BadRequestError, "valid role"),
    ],
)
async def test_upstream_errors_are_typed(sim_url: str, payload, error, text) -> None:
    async with OpenRouterClient(base_url=sim_url) as client:
        with pytest.raises(error) as info:
            await client.chat_completions(payload)
    assert text in info.value.message
    assert info.value.status_code == error.default_status


async def test_models_carry_string_prices(sim_url: str) -> None:
    async with OpenRouterClient(base_url=sim_url) as client:
        models = await client.list_models()
    ids = {m["id"] for m in models}
    assert {"openai/gpt-4o-mini", "anthropic/claude-3.5-sonnet"} <= ids
    for m in models:
        assert isinstance(m["pricing"]["prompt"], str) and m["context_length"] > 0
    assert price_of("openai/gpt-4o-mini") is not None and price_of("x/y") is None


@pytest.mark.integration
async def test_headers_and_injected_session() -> None:
    seen: dict[str, str] = {}

    async def echo(request: web.Request) -> web.Response:
        seen.update(request.headers)
        return web.json_response({"id": "gen-1", "model": "m", "choices": [], "usage": {}})

    async with fake_upstream({("POST", "/v1/chat/completions"): echo}) as url:
        async with aiohttp.ClientSession() as shared:
            client = OpenRouterClient(
                base_url=f"{url}/v1",
                api_key="sk-or-1",
                app_url="https://example.test",
                app_title="RB",
                session=shared,
            )
            await client.chat_completions(HELLO)
            await client.aclose()
            assert not shared.closed  # not ours to close
        assert seen["Authorization"] == "Bearer sk-or-1"
        assert seen["HTTP-Referer"] == "https://example.test"
        assert seen["X-OpenRouter-Title"] == "RB"


async def test_no_server_is_a_connection_error() -> None:
    async with OpenRouterClient(base_url=f"http://127.0.0.1:{free_port()}/api/v1") as client:
        with pytest.raises(UpstreamConnectionError) as info:
            await client.chat_completions(HELLO)
    assert info.value.retryable


@pytest.mark.parametrize(
    ("status", "name", "retryable"),
    [
        (400, "BadRequestError", False),
        (401, "AuthenticationError", False),
        (402, "InsufficientCreditsError", False),
        (403, "PermissionDeniedError", False),
        (404, "NotFoundError", False),
        (408, "RequestTimeoutError", True),
        (413, "PayloadTooLargeError", False),
        (422, "UnprocessableError", False),
        (429, "RateLimitError", True),
        (500, "UpstreamServerError", False),
        (502, "BadGatewayError", True),
        (503, "ServiceUnavailableError", True),
        (524, "ProviderTimeoutError", True),
        (529, "OverloadedError", True),
    ],
)
def test_error_mapping_table(status: int, name: str, retryable: bool) -> None:
    err = error_from_response(
        status, b'{"error": {"code": %d, "message": "m", "metadata": {"k": 1}}}' % status
    )
    assert type(err).__name__ == name and err.retryable is retryable
    assert err.status_code == status and err.message == "m" and err.metadata == {"k": 1}


def test_retry_after_and_non_json_bodies() -> None:
    err = error_from_response(429, b"{}", {"Retry-After": "7"})
    assert isinstance(err, RateLimitError) and err.retry_after == 7.0
    plain = error_from_response(502, b"<html>bad gateway</html>")
    assert plain.message == "<html>bad gateway</html>" and plain.retryable
