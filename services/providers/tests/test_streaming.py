"""Streaming through the providers slice, retries, and faults on the way: the slice and the
simulator are real servers on 127.0.0.1; every call must land in the ledger and settle its
budget hold, however it ends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from openrouter_gateway.simulator import create_simulator_app
from services.kit.app import create_app
from services.kit.testing import TEST_TOKEN, serve_app, settings_for_tests
from services.providers.slice import create_slice

H = {"X-Internal-Token": TEST_TOKEN, "X-Caller": "agent_core"}


def ask(text: str, **extra: object) -> dict[str, object]:
    return {
        "model": "openai/gpt-4o-mini",
        "messages": [{"role": "user", "content": text}],
        "max_tokens": 200,
        **extra,
    }


@pytest.fixture
def api(tmp_path: Path) -> Iterator[httpx.Client]:
    with serve_app(create_simulator_app()) as sim_url:
        settings = settings_for_tests(
            tmp_path,
            simulator={"port": int(sim_url.rsplit(":", 1)[1])},
            providers={"retry_backoff_s": 0.01},
        )
        with (
            serve_app(create_app(create_slice(), settings)) as url,
            httpx.Client(base_url=url, headers=H, timeout=30) as client,
        ):
            # every test runs under a budget, so every hold must be settled
            budget = client.post(
                "/v1/budgets", json={"scope": "global", "window": "total", "limit_usd": 10}
            )
            assert budget.status_code == 201, budget.text
            yield client


def sse_data(text: str) -> list[str]:
    return [line[6:] for line in text.split("\n") if line.startswith("data: ")]


def ledger(api: httpx.Client) -> list[dict]:
    return api.get("/v1/usage").json()["data"]


def budget_after(api: httpx.Client) -> dict:
    (b,) = api.get("/v1/budgets").json()["data"]
    return b


def test_stream_is_relayed_and_booked(api: httpx.Client) -> None:
    plain = api.post("/v1/chat/completions", json=ask("Stream me a story")).json()
    with api.stream(
        "POST", "/v1/chat/completions", json=ask("Stream me a story", stream=True)
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        text = r.read().decode()
    assert text.startswith(": OPENROUTER PROCESSING")
    data = sse_data(text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        == plain["choices"][0]["message"]["content"]
    )
    usage = chunks[-1]["usage"]
    assert usage == plain["usage"]
    row = ledger(api)[0]
    assert row["streamed"] and row["outcome"] == "ok" and row["ttft_ms"] is not None
    assert row["ttft_ms"] <= row["latency_ms"]
    assert row["completion_tokens"] == usage["completion_tokens"]
    assert row["cost_usd"] == pytest.approx(usage["cost"])
    b = budget_after(api)
    assert b["reserved_usd"] == 0
    assert b["spent_usd"] == pytest.approx(usage["cost"] + plain["usage"]["cost"])
    metrics = httpx.get(str(api.base_url) + "/metrics").text
    assert "llm_time_to_first_token_seconds_count" in metrics


def test_retryable_failures_are_retried_and_counted(api: httpx.Client) -> None:
    r = api.post("/v1/chat/completions", json=ask("simulate a rate limit please"))
    assert r.status_code == 200, r.text
    with api.stream(
        "POST", "/v1/chat/completions", json=ask("simulate an outage, streamed", stream=True)
    ) as s:
        assert s.status_code == 200
        assert sse_data(s.read().decode())[-1] == "[DONE]"
    rows = ledger(api)
    assert [row["attempts"] for row in rows] == [2, 2]
    assert all(row["outcome"] == "ok" for row in rows)
    assert "llm_retries_total" in httpx.get(str(api.base_url) + "/metrics").text


def test_error_before_the_stream_keeps_its_status(api: httpx.Client) -> None:
    r = api.post("/v1/chat/completions", json=ask("simulate no credits", stream=True))
    assert r.status_code == 402 and "Insufficient credits" in r.json()["error"]["message"]
    (row,) = ledger(api)
    assert row["outcome"] == "InsufficientCreditsError" and row["streamed"]
    assert budget_after(api)["reserved_usd"] == 0


def test_mid_stream_error_reaches_the_caller_as_an_error_chunk(api: httpx.Client) -> None:
    with api.stream(
        "POST", "/v1/chat/completions", json=ask("simulate a stream error", stream=True)
    ) as r:
        assert r.status_code == 200  # the stream had started
        data = sse_data(r.read().decode())
    assert data[-1] == "[DONE]"
    last = json.loads(data[-2])
    assert last["choices"][0]["finish_reason"] == "error"
    assert last["error"]["code"] == 502 and "Provider disconnected" in last["error"]["message"]
    (row,) = ledger(api)
    assert row["outcome"] == "BadGatewayError" and row["cost_source"] == "estimate"
    assert row["completion_tokens"] > 0  # text had been generated
    b = budget_after(api)
    assert b["reserved_usd"] == 0 and b["spent_usd"] == pytest.approx(row["cost_usd"])


async def test_caller_going_away_mid_stream_is_booked(api: httpx.Client) -> None:
    slow = ask("simulate a slow start", stream=True)
    async with (
        httpx.AsyncClient(base_url=str(api.base_url), headers=H, timeout=30) as client,
        client.stream("POST", "/v1/chat/completions", json=slow) as r,
    ):
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if '"content": "Thinking' in line:
                break  # leave after the first words
    for _ in range(100):
        rows = ledger(api)
        if rows:
            break
        await asyncio.sleep(0.05)
    (row,) = rows
    assert row["outcome"] == "OpenRouterError" and "disconnected" in row["error"]
    assert budget_after(api)["reserved_usd"] == 0
