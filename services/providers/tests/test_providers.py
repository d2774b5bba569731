"""The providers slice against the OpenRouter simulator: completions and the usage ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from openrouter_gateway.simulator import create_simulator_app
from services.kit.app import create_app
from services.kit.testing import (
    TEST_TOKEN,
    fake_upstream,
    free_port,
    serve_app,
    settings_for_tests,
)
from services.providers.slice import create_slice

HELLO = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]}


@pytest.fixture(scope="module")
def simulator() -> Iterator[str]:
    with serve_app(create_simulator_app()) as url:
        yield url + "/api/v1"


def providers_app(tmp_path: Path, upstream: str, **overrides: object):
    settings = settings_for_tests(
        tmp_path, simulator={"port": int(upstream.split(":")[2].split("/")[0])}, **overrides
    )
    return create_app(create_slice(), settings)


@pytest.fixture
def providers(tmp_path: Path, simulator: str) -> Iterator[httpx.Client]:
    with (
        serve_app(providers_app(tmp_path, simulator)) as url,
        httpx.Client(base_url=url, headers={"X-Internal-Token": TEST_TOKEN}, timeout=10) as client,
    ):
        yield client


def test_completion_is_forwarded_and_recorded(providers: httpx.Client) -> None:
    r = providers.post(
        "/v1/chat/completions",
        json=HELLO,
        headers={"X-Session-ID": "s1", "X-Caller": "agent_core", "X-Request-ID": "req-1"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"].startswith("gen-") and r.headers["x-model"] == "openai/gpt-4o-mini"
    ledger = providers.get("/v1/usage", params={"session_id": "s1"}).json()
    assert ledger["count"] == 1
    row = ledger["data"][0]
    assert row["caller"] == "agent_core" and row["request_id"] == "req-1"
    assert row["model"] == "openai/gpt-4o-mini" and row["generation_id"] == body["id"]
    assert row["prompt_tokens"] == body["usage"]["prompt_tokens"]
    assert row["cost_usd"] == pytest.approx(body["usage"]["cost"])
    assert row["cost_source"] == "upstream" and row["outcome"] == "ok"
    assert ledger["total_cost_usd"] == pytest.approx(body["usage"]["cost"])
    status = httpx.get(str(providers.base_url) + "/status").json()
    assert status["details"]["calls"] == 1


def test_upstream_errors_keep_their_meaning_and_are_recorded(providers: httpx.Client) -> None:
    r = providers.post("/v1/chat/completions", json={**HELLO, "model": "nope/unknown"})
    assert r.status_code == 404
    assert "No endpoints found for nope/unknown" in r.json()["error"]["message"]
    row = providers.get("/v1/usage").json()["data"][0]
    assert row["outcome"] == "NotFoundError" and row["requested_model"] == "nope/unknown"


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({**HELLO, "stream": "maybe"}, 422, "body.stream"),
        ({**HELLO, "max_tokens": 10**9}, 400, "above the limit"),
        ({"model": "x", "messages": []}, 422, "body.messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, 422, "body.messages.0.role"),
    ],
)
def test_bad_requests_are_4xx_and_cost_nothing(providers: httpx.Client, body, status, text) -> None:
    r = providers.post("/v1/chat/completions", json=body)
    assert r.status_code == status and text in r.text
    assert providers.get("/v1/usage").json()["count"] == 0


@pytest.mark.integration
def test_unreachable_upstream_is_503_and_recorded(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/api/v1"
    with serve_app(providers_app(tmp_path, dead)) as url:
        h = {"X-Internal-Token": TEST_TOKEN}
        r = httpx.post(f"{url}/v1/chat/completions", json=HELLO, headers=h)
        assert r.status_code == 503 and "LLM upstream" in r.json()["error"]["message"]
        row = httpx.get(f"{url}/v1/usage", headers=h).json()["data"][0]
        assert row["outcome"] == "UpstreamConnectionError"


@pytest.mark.integration
async def test_cost_falls_back_to_catalog_prices(tmp_path: Path) -> None:
    """An OpenAI-compatible upstream that reports no cost: priced from the catalog."""

    async def answer(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "model": "openai/gpt-4o",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
                "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100},
            }
        )

    async with fake_upstream({("POST", "/v1/chat/completions"): answer}) as upstream:
        settings = settings_for_tests(
            tmp_path, openrouter={"api_key": "local", "base_url": f"{upstream}/v1"}
        )
        with serve_app(create_app(create_slice(), settings)) as url:
            h = {"X-Internal-Token": TEST_TOKEN}
            async with httpx.AsyncClient() as c:
                r = await c.post(f"{url}/v1/chat/completions", json=HELLO, headers=h)
                assert r.status_code == 200
                row = (await c.get(f"{url}/v1/usage", headers=h)).json()["data"][0]
        # gpt-4o: $2.50 / M prompt, $10 / M completion
        assert row["cost_usd"] == pytest.approx(1000 * 2.5e-6 + 100 * 1e-5)
        assert row["cost_source"] == "catalog"


def test_model_auto_routes_and_says_why(providers: httpx.Client) -> None:
    easy = providers.post(
        "/v1/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": "hi!"}]},
    )
    assert easy.status_code == 200, easy.text
    assert easy.headers["x-route-model"] == "meta-llama/llama-3.1-8b-instruct"
    assert easy.json()["model"] == easy.headers["x-route-model"]
    assert easy.headers["x-route-reason"].startswith("simple request")
    hard = providers.post(
        "/v1/chat/completions",
        json={
            "model": "auto",
            "messages": [
                {
                    "role": "user",
                    "content": "Design a multi-region architecture for a payments ledger, "
                    "with failure modes, trade-offs and a migration plan.",
                }
            ],
        },
    )
    assert hard.headers["x-route-reason"].startswith("complex request")
    row = providers.get("/v1/usage").json()["data"][0]
    assert row["requested_model"] == "auto" and row["model"] == hard.headers["x-route-model"]
    assert row["route_reason"] == hard.headers["x-route-reason"]  # shown on the dashboard
    too_cheap = providers.post(
        "/v1/chat/completions",
        headers={"X-Route-Max-Price-USD": "0.0000000001"},
        json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert too_cheap.status_code == 400 and "no model fits" in too_cheap.text
