"""The typed client: completions come back as ChatCompletion (validated from the bytes),
streamed ones assembled into the same model; OpenRouter's extra fields are tolerated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web

from openrouter_gateway import OpenRouterError
from openrouter_gateway.scenario import Scenario, ToolCallSpec, Turn
from openrouter_gateway.simulator import create_simulator_app
from services.kit.app import create_app
from services.kit.client import ClientPool
from services.kit.errors import UpstreamError
from services.kit.testing import TEST_TOKEN, fake_upstream, serve_app, settings_for_tests
from services.providers.client import CompletionBuilder, ProvidersClient
from services.providers.schemas import ChatCompletion, ChatCompletionChunk
from services.providers.slice import create_slice

LIST_DIR = {
    "type": "function",
    "function": {"name": "list_dir", "description": "List", "parameters": {"type": "object"}},
}
ASK = {
    "model": "openai/gpt-4o-mini",
    "messages": [{"role": "user", "content": "list it"}],
    "tools": [LIST_DIR],
}


def test_openrouter_extras_and_nulls_are_tolerated() -> None:
    body = {
        "id": "gen-1",
        "provider": "OpenAI",
        "model": "openai/gpt-4o-mini",
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "logprobs": None,
                "native_finish_reason": "tool_calls",
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "reasoning": "thinking...",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "index": 0,
                            "type": "function",
                            "function": {"name": "list_dir", "arguments": {"path": "."}},
                        }
                    ],
                },
            }
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 3,
            "total_tokens": 13,
            "cost": 0.00012,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    }
    done = ChatCompletion.model_validate_json(json.dumps(body))
    call = done.choices[0].message.tool_calls[0]
    assert call.function.name == "list_dir" and json.loads(call.function.arguments) == {"path": "."}
    assert done.usage.cost == pytest.approx(0.00012) and done.provider == "OpenAI"
    assert done.choices[0].message.model_extra == {"refusal": None, "reasoning": "thinking..."}
    bare = ChatCompletion.model_validate_json(
        b'{"choices": [{"message": {"content": "hi", "tool_calls": null}}], "usage": null}'
    )
    assert bare.choices[0].message.tool_calls == [] and bare.usage.cost == 0.0


def test_stream_chunks_fold_into_the_completion() -> None:
    chunks = [
        {"id": "g", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
        {"choices": [{"index": 0, "delta": {"content": "Let me "}}]},
        {"choices": [{"index": 0, "delta": {"content": "look."}}]},
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "c1",
                                "type": "function",
                                "function": {"name": "read_", "arguments": '{"pa'},
                            },
                        ]
                    },
                }
            ]
        },
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {"index": 0, "function": {"name": "file", "arguments": 'th": "a"}'}}
                        ]
                    },
                    "finish_reason": "tool_calls",
                }
            ]
        },
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "cost": 0.5}},
    ]
    built = CompletionBuilder()
    texts = [built.add(ChatCompletionChunk.model_validate_json(json.dumps(c))) for c in chunks]
    assert "".join(texts) == "Let me look."
    done = built.result()
    assert done.id == "g" and done.model == "m" and done.usage.cost == 0.5
    message = done.choices[0].message
    assert message.content == "Let me look." and done.choices[0].finish_reason == "tool_calls"
    [call] = message.tool_calls
    assert (call.id, call.function.name, call.function.arguments) == (
        "c1",
        "read_file",
        '{"path": "a"}',
    )


def test_an_error_chunk_raises() -> None:
    chunk = ChatCompletionChunk.model_validate_json(
        b'{"error": {"code": 502, "message": "provider down"},'
        b' "choices": [{"index": 0, "delta": {}, "finish_reason": "error"}]}'
    )
    with pytest.raises(OpenRouterError, match="provider down"):
        CompletionBuilder().add(chunk)


@pytest.mark.integration
async def test_streamed_and_plain_answers_are_the_same_model(tmp_path: Path) -> None:
    scenario = Scenario(
        name="script",
        turns=[Turn(content="Looking.", tool_calls=[ToolCallSpec(name="list_dir", arguments={})])],
    )
    sim = create_simulator_app(scenarios={"script": scenario}, default_scenario="script")
    with serve_app(sim) as sim_url:
        settings = settings_for_tests(tmp_path, simulator={"port": int(sim_url.rsplit(":", 1)[1])})
        with serve_app(create_app(create_slice(), settings)) as url:
            pool = ClientPool(caller="agent_core", token=TEST_TOKEN)
            try:
                client = ProvidersClient(pool, url)
                plain = await client.chat_completions(ASK, session_id="s-1")
                pieces: list[str] = []

                async def on_text(text: str) -> None:
                    pieces.append(text)

                streamed = await client.stream_chat_completions(ASK, on_text=on_text)
            finally:
                await pool.close()
    for done in (plain, streamed):
        assert isinstance(done, ChatCompletion)
        assert done.model == "openai/gpt-4o-mini" and done.usage.prompt_tokens > 0
        assert done.usage.cost > 0
        [call] = done.choices[0].message.tool_calls
        assert call.function.name == "list_dir" and call.id
    assert (
        "".join(pieces) == streamed.choices[0].message.content == plain.choices[0].message.content
    )


@pytest.mark.integration
async def test_an_answer_that_is_not_a_completion_is_an_upstream_error() -> None:
    async def chat(_: web.Request) -> web.Response:
        return web.json_response({"choices": [{"message": {"content": ["not", "text"]}}]})

    async with fake_upstream({("POST", "/v1/chat/completions"): chat}) as upstream:
        pool = ClientPool(caller="memory", token=TEST_TOKEN)
        try:
            with pytest.raises(UpstreamError, match=r"choices\.0\.message\.content"):
                await ProvidersClient(pool, upstream).chat_completions(ASK)
        finally:
            await pool.close()
