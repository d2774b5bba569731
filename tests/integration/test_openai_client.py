"""The official ``openai`` package as a client of the providers slice (its base_url pointed
at it), against the real fleet."""

from __future__ import annotations

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
