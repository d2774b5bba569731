"""Streaming, tool calls, retries and faults: the client against the simulator and against
hand-written SSE from a fake upstream (both real servers on 127.0.0.1)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web

from openrouter_gateway import (
    BadGatewayError,
    InsufficientCreditsError,
    OpenRouterClient,
    RateLimitError,
    RetryPolicy,
    ServiceUnavailableError,
    StreamError,
    UpstreamConnectionError,
)
from openrouter_gateway.scenario import ScenarioError, parse_fault_header, parse_scenario
from openrouter_gateway.simulator import FAULT_HEADER, SCENARIO_HEADER, create_simulator_app
from openrouter_gateway.streaming import SSEEvent, StreamAccumulator, iter_sse
from services.kit.testing import fake_upstream, serve_app

MINI = "openai/gpt-4o-mini"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
        },
    },
}
FAST_RETRY = RetryPolicy(max_attempts=3, max_total_s=5, backoff_s=0.01, max_backoff_s=0.05)


def ask(text: str, **extra: object) -> dict[str, object]:
    return {"model": MINI, "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    with serve_app(create_simulator_app()) as url:
        yield url + "/api/v1"


async def _chunks(*pieces: bytes) -> AsyncIterator[bytes]:
    for p in pieces:
        yield p


async def _events(*pieces: bytes) -> list[SSEEvent]:
    return [ev async for ev in iter_sse(_chunks(*pieces))]


async def test_sse_parser_handles_comments_splits_and_line_endings() -> None:
    raw = (
        b": OPENROUTER PROCESSING\r\n\r\n"
        b'data: {"a": 1}\n\n'
        b"event: message\rdata: line one\rdata: line two\r\r"
        b"id: 7\nretry: 100\ndata: [DONE]\n\n"
    )
    whole = await _events(raw)
    # the same bytes cut at every position give the same events
    for cut in range(1, len(raw)):
        assert await _events(raw[:cut], raw[cut:]) == whole
    assert whole[0] == SSEEvent(comment="OPENROUTER PROCESSING")
    assert whole[1].data == '{"a": 1}'
    assert whole[2] == SSEEvent(data="line one\nline two", event="message")
    assert whole[3].is_done
    # an unterminated last event still counts; an endless line is refused
    assert (await _events(b"data: tail"))[0].data == "tail"
    with pytest.raises(StreamError):
        _ = [ev async for ev in iter_sse(_chunks(b"x" * 100), max_line_bytes=50)]


def test_accumulator_joins_tool_call_fragments_by_index() -> None:
    acc = StreamAccumulator()
    frames = [
        {"id": "gen-1", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
        {"choices": [{"index": 0, "delta": {"content": "Let me "}}]},
        {"choices": [{"index": 0, "delta": {"content": "check."}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 1, "id": "c2", "type": "function",
             "function": {"name": "b", "arguments": '{"y":'}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "c1", "type": "function",
             "function": {"name": "a", "arguments": ""}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": '{"x": 1}'}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 1, "function": {"arguments": " 2}"}}]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7, "cost": 0.1}},
    ]  # fmt: skip
    for f in frames:
        acc.add(f)
    body = acc.result()
    msg = body["choices"][0]["message"]
    assert msg["content"] == "Let me check."
    assert [
        (c["id"], c["function"]["name"], c["function"]["arguments"]) for c in msg["tool_calls"]
    ] == [
        ("c1", "a", '{"x": 1}'),
        ("c2", "b", '{"y": 2}'),
    ]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["usage"]["completion_tokens"] == 7 and body["id"] == "gen-1"


async def test_stream_equals_non_stream_and_ends_with_usage(sim_url: str) -> None:
    async with OpenRouterClient(base_url=sim_url) as client:
        plain = await client.chat_completions(ask("Tell me a story"))
        async with client.stream_chat_completions(ask("Tell me a story")) as stream:
            events = [ev async for ev in stream]
            assert stream.finished and stream.first_token_s is not None
        body = stream.acc.result()
    assert events[0].comment == "OPENROUTER PROCESSING"
    data = [json.loads(ev.data) for ev in events if ev.data is not None]
    assert len(data) > 3  # text arrives in pieces
    assert data[-1]["choices"] == [] and data[-1]["usage"]["total_tokens"] > 0
    assert all(d["object"] == "chat.completion.chunk" for d in data)
    assert (
        body["choices"][0]["message"]["content"] == plain.body["choices"][0]["message"]["content"]
    )
    assert body["usage"] == plain.body["usage"] and body["usage"]["cost"] > 0
    assert stream.generation_id == plain.generation_id == plain.generation_header


async def test_tool_calls_streamed_and_not(sim_url: str) -> None:
    req = ask("What is the weather in Paris?", tools=[WEATHER_TOOL])
    async with OpenRouterClient(base_url=sim_url) as client:
        plain = await client.chat_completions(req)
        streamed = await client.chat_completions({**req, "stream": True})
        # without tools on offer the model cannot call one
        no_tools = await client.chat_completions(ask("What is the weather in Paris?"))
        # after the tool answered, the scripted second turn
        call = plain.body["choices"][0]["message"]["tool_calls"][0]
        follow = await client.chat_completions(
            {
                **req,
                "messages": [
                    *req["messages"],  # type: ignore[list-item]
                    {"role": "assistant", "content": None, "tool_calls": [call]},
                    {"role": "tool", "tool_call_id": call["id"], "content": "sunny, 21 C"},
                ],
            }
        )
    for result in (plain, streamed):
        choice = result.body["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        (tc,) = choice["message"]["tool_calls"]
        assert tc["function"]["name"] == "get_weather"
        assert json.loads(tc["function"]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    assert (
        streamed.body["choices"][0]["message"]["tool_calls"]
        == plain.body["choices"][0]["message"]["tool_calls"]
    )
    assert "tool_calls" not in no_tools.body["choices"][0]["message"]
    assert "sunny in Paris" in follow.body["choices"][0]["message"]["content"]


async def test_generation_stats(sim_url: str) -> None:
    async with OpenRouterClient(base_url=sim_url) as client:
        result = await client.chat_completions(ask("generation stats please"))
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{sim_url}/generation", params={"id": result.generation_id}) as r:
                stats = (await r.json())["data"]
            async with http.get(f"{sim_url}/generation", params={"id": "gen-nope"}) as r:
                assert r.status == 404
    assert stats["id"] == result.generation_id and stats["model"] == MINI
    assert stats["tokens_prompt"] == result.usage.prompt_tokens
    assert stats["total_cost"] == pytest.approx(result.usage.cost)


async def test_retry_after_is_honoured_then_answered(sim_url: str) -> None:
    async with OpenRouterClient(base_url=sim_url, retry=FAST_RETRY) as client:
        started = time.perf_counter()
        result = await client.chat_completions(ask("Please simulate a rate limit now"))
        elapsed = time.perf_counter() - started
        streamed = await client.chat_completions(
            ask("Please simulate a rate limit in a stream", stream=True)
        )
    assert result.attempts == 2 and streamed.attempts == 2
    assert elapsed >= 0.05  # the scenario's Retry-After
    assert "rate limit passed" in result.body["choices"][0]["message"]["content"]


async def test_retries_stop_at_the_attempt_limit_and_the_time_limit(sim_url: str) -> None:
    headers = {FAULT_HEADER: "status=503,times=5"}
    async with OpenRouterClient(base_url=sim_url, retry=FAST_RETRY) as client:
        with pytest.raises(ServiceUnavailableError):
            await client.chat_completions(ask("outage A"), extra_headers=headers)
        sim = await _sim_requests(sim_url)
        # a Retry-After longer than the time left is not waited for
        slow = RetryPolicy(max_attempts=5, max_total_s=0.5)
        client.retry = slow
        started = time.perf_counter()
        with pytest.raises(RateLimitError) as info:
            await client.chat_completions(
                ask("outage B"), extra_headers={FAULT_HEADER: "status=429,retry_after=30"}
            )
        assert time.perf_counter() - started < 0.5 and info.value.retry_after == 30
    assert sim >= 3


async def _sim_requests(sim_url: str) -> int:
    url = sim_url.removesuffix("/api/v1") + "/health"
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        return int((await r.json())["requests"])


@pytest.mark.parametrize("status", [400, 401, 402, 403])
async def test_client_errors_are_never_retried(sim_url: str, status: int) -> None:
    before = await _sim_requests(sim_url)
    async with OpenRouterClient(base_url=sim_url, retry=FAST_RETRY) as client:
        with pytest.raises(Exception) as info:
            await client.chat_completions(
                ask(f"no retry {status}"), extra_headers={FAULT_HEADER: f"status={status}"}
            )
    assert getattr(info.value, "status_code", None) == status
    assert await _sim_requests(sim_url) == before + 1


async def test_402_scenario_is_typed(sim_url: str) -> None:
    async with OpenRouterClient(base_url=sim_url, retry=FAST_RETRY) as client:
        with pytest.raises(InsufficientCreditsError) as info:
            await client.chat_completions(ask("simulate no credits"))
    assert "Insufficient credits" in info.value.message


async def test_mid_stream_error_is_typed_and_not_retried(sim_url: str) -> None:
    before = await _sim_requests(sim_url)
    async with (
        OpenRouterClient(base_url=sim_url, retry=FAST_RETRY) as client,
        client.stream_chat_completions(ask("simulate a stream error")) as stream,
    ):
        with pytest.raises(BadGatewayError) as info:
            async for _ in stream:
                pass
    assert info.value.mid_stream and "Provider disconnected" in info.value.message
    assert stream.acc.text  # some text had arrived before the error
    assert await _sim_requests(sim_url) == before + 1


async def test_dropped_connection(sim_url: str) -> None:
    async with OpenRouterClient(base_url=sim_url) as client:
        with pytest.raises(UpstreamConnectionError) as streamed:
            await client.chat_completions(ask("simulate a dropped connection", stream=True))
        with pytest.raises(UpstreamConnectionError):
            await client.chat_completions(ask("simulate a dropped connection"))
    assert streamed.value.mid_stream


@pytest.mark.integration
async def test_a_stream_is_retried_until_its_first_chunk() -> None:
    """Failures before the first chunk are retried; the caller sees one clean stream."""
    calls = {"n": 0}

    async def flaky(request: web.Request) -> web.StreamResponse:
        calls["n"] += 1
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if calls["n"] == 1:  # an error chunk before any content: nothing passed on yet
            err = {"error": {"code": 503, "message": "warming up"}, "choices": []}
            await resp.write(b"data: " + json.dumps(err).encode() + b"\n\n")
        else:
            for part in ("Hel", "lo"):
                d = {"choices": [{"index": 0, "delta": {"content": part}}]}
                await resp.write(b"data: " + json.dumps(d).encode() + b"\n\n")
            await resp.write(b"data: [DONE]\n\n")
        return resp

    async with (
        fake_upstream({("POST", "/v1/chat/completions"): flaky}) as url,
        OpenRouterClient(base_url=f"{url}/v1", retry=FAST_RETRY) as client,
    ):
        result = await client.chat_completions(ask("hi", stream=True))
    assert calls["n"] == 2 and result.attempts == 2
    assert result.body["choices"][0]["message"]["content"] == "Hello"


@pytest.mark.integration
async def test_a_server_that_ignores_stream_true_is_an_error() -> None:
    async def plain(request: web.Request) -> web.Response:
        return web.json_response({"choices": []})

    async with (
        fake_upstream({("POST", "/v1/chat/completions"): plain}) as url,
        OpenRouterClient(base_url=f"{url}/v1") as client,
    ):
        with pytest.raises(UpstreamConnectionError, match="asked for a stream"):
            await client.chat_completions(ask("hi", stream=True))


async def test_scenario_header_and_bad_scenarios(sim_url: str) -> None:
    async with OpenRouterClient(base_url=sim_url) as client:
        result = await client.chat_completions(
            ask("anything", tools=[WEATHER_TOOL]), extra_headers={SCENARIO_HEADER: "weather_tool"}
        )
        assert result.body["choices"][0]["finish_reason"] == "tool_calls"
        with pytest.raises(Exception, match="no scenario named"):
            await client.chat_completions(ask("x"), extra_headers={SCENARIO_HEADER: "nope"})
        with pytest.raises(Exception, match="X-Simulator-Fault"):
            await client.chat_completions(ask("x"), extra_headers={FAULT_HEADER: "status=200"})
    with pytest.raises(ScenarioError, match="turns"):
        parse_scenario("name: x\nturns: []\n", source="t")
    with pytest.raises(ScenarioError, match="anchors"):
        parse_scenario("name: &a x\nturns: [*a]\n", source="t")
    with pytest.raises(ScenarioError, match="match"):
        parse_scenario("name: x\nmatch: '('\nturns: [{content: hi}]\n", source="t")
    assert parse_fault_header("status=429, retry_after=1.5, times=2").retry_after == 1.5
    assert parse_fault_header("drop").drop
