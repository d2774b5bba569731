"""The official ``openai`` package as a client of the providers slice (its base_url pointed
at it), against the real fleet."""

from __future__ import annotations

import json

import openai
import pytest

from refactorbot.testing import INTERNAL_TOKEN, RunningFleet

pytestmark = [pytest.mark.integration]


@pytest.fixture
def client(fleet: RunningFleet) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=fleet.url("providers") + "/v1",
        api_key="unused-by-providers",
        default_headers={"X-Internal-Token": INTERNAL_TOKEN},
        max_retries=0,
        timeout=30,
    )


def test_chat_completion_and_models(client: openai.OpenAI) -> None:
    done = client.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "Hello, openai!"}],
        max_tokens=200,
        temperature=0.2,
    )
    assert done.id.startswith("gen-") and done.model == "openai/gpt-4o-mini"
    assert "You said: Hello, openai!" in (done.choices[0].message.content or "")
    assert done.usage is not None and done.usage.total_tokens > 0
    models = {m.id for m in client.models.list()}
    assert {"openai/gpt-4o-mini", "anthropic/claude-3.5-sonnet"} <= models


def test_model_auto_through_the_openai_package(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-route-model"] == raw.parse().model


def test_errors_arrive_as_the_packages_typed_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="nope/unknown", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="openai/gpt-4o-mini", messages=[])


WEATHER = {
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


def test_streaming_through_the_openai_package(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "Stream to the openai package"}]
    whole = client.chat.completions.create(model="openai/gpt-4o-mini", messages=messages)
    stream = client.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 3 and text == whole.choices[0].message.content
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == whole.usage.total_tokens  # type: ignore[union-attr]


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_through_the_openai_package(client: openai.OpenAI, stream: bool) -> None:
    """A tool round trip: the model calls get_weather, gets the result, answers."""
    messages: list = [{"role": "user", "content": "What is the weather in Paris today?"}]
    if stream:
        chunks = list(
            client.chat.completions.create(
                model="openai/gpt-4o-mini", messages=messages, tools=[WEATHER], stream=True
            )
        )
        fragments = [
            tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])
        ]
        assert len(fragments) > 1  # the arguments came in pieces
        call_id = next(f.id for f in fragments if f.id)
        name = "".join(f.function.name or "" for f in fragments if f.function)
        arguments = "".join(f.function.arguments or "" for f in fragments if f.function)
        finish = next(
            c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
        )
    else:
        done = client.chat.completions.create(
            model="openai/gpt-4o-mini", messages=messages, tools=[WEATHER], tool_choice="auto"
        )
        (call,) = done.choices[0].message.tool_calls or []
        call_id, name, arguments = call.id, call.function.name, call.function.arguments
        finish = done.choices[0].finish_reason
    assert finish == "tool_calls" and name == "get_weather"
    assert json.loads(arguments) == {"city": "Paris", "unit": "celsius"}
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "sunny, 21 C"},
    ]
    final = client.chat.completions.create(
        model="openai/gpt-4o-mini", messages=messages, tools=[WEATHER]
    )
    assert "sunny in Paris" in (final.choices[0].message.content or "")


def test_mid_stream_error_raises_in_the_openai_package(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "simulate a stream error, please"}],
        stream=True,
    )
    with pytest.raises(openai.APIError, match="Provider disconnected"):
        for _ in stream:
            pass
