"""The agent through master_core, as a user calls it: streamed chat, and the
OpenAI-compatible /v1/chat/completions running full agent turns (with the openai package)."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from refactorbot.testing import ADMIN_KEY, RunningFleet

pytestmark = [pytest.mark.integration]


def test_streamed_chat_through_master_core(fleet: RunningFleet) -> None:
    with (
        fleet.master as c,
        c.stream(
            "POST", "/v1/chat", json={"message": "What is the weather in Paris?", "stream": True}
        ) as r,
    ):
        assert r.status_code == 200
        events, final = [], None
        for line in r.iter_lines():
            if line.startswith("event: "):
                events.append(line[7:])
            elif line.startswith("data: ") and events and events[-1] == "final":
                final = json.loads(line[6:])
    assert events[0] == "turn.started" and events[-1] == "final"
    assert final is not None and final["stop_reason"] == "final_answer"
    # the fleet's tools do not include get_weather: the agent reports the unknown tool
    # back to the model, which then answers
    assert "tool.finished" in events and final["tool_calls"] == 1


@pytest.fixture
def agent(fleet: RunningFleet) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=fleet.url("master_core") + "/v1", api_key=ADMIN_KEY, max_retries=0, timeout=60
    )


def test_openai_package_runs_agent_turns(agent: openai.OpenAI) -> None:
    done = agent.chat.completions.with_raw_response.create(
        model="agent",
        messages=[
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": "Hello Ada."},
            {"role": "user", "content": "Say hello to the agent API"},
        ],
    )
    completion = done.parse()
    assert completion.id.startswith("chatcmpl-") and completion.choices[0].finish_reason == "stop"
    assert "You said: Say hello to the agent API" in (completion.choices[0].message.content or "")
    assert completion.usage is not None and completion.usage.total_tokens > 0
    session = done.headers["x-session-id"]
    # continue the stored session by its id
    again = agent.chat.completions.create(
        model="agent",
        messages=[{"role": "user", "content": "And again"}],
        extra_headers={"X-Session-ID": session},
    )
    assert "And again" in (again.choices[0].message.content or "")


def test_openai_package_streams_agent_turns(agent: openai.OpenAI) -> None:
    chunks = list(
        agent.chat.completions.create(
            model="agent",
            messages=[{"role": "user", "content": "Stream an agent turn"}],
            stream=True,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "You said: Stream an agent turn" in text
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["stop"] and chunks[-1].usage is not None


def test_bad_agent_requests_are_4xx(agent: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        agent.chat.completions.create(
            model="agent", messages=[{"role": "assistant", "content": "no user message"}]
        )
    with pytest.raises(openai.UnprocessableEntityError):
        agent.chat.completions.create(model="agent", messages=[])


def test_sessions_are_isolated_between_api_keys(fleet: RunningFleet) -> None:
    with fleet.master as admin:
        keys = [admin.post("/v1/keys", json={"name": f"tenant-{n}"}).json()["key"] for n in "ab"]
    a, b = ({"Authorization": f"Bearer {k}"} for k in keys)
    base = fleet.url("master_core")

    turn = httpx.post(f"{base}/v1/chat", json={"message": "my secret"}, headers=a, timeout=30)
    assert turn.status_code == 200, turn.text
    sid = turn.json()["session_id"]
    for method, path in [
        ("GET", f"/v1/sessions/{sid}/messages"),
        ("GET", f"/v1/sessions/{sid}/search?q=secret"),
        ("GET", f"/v1/sessions/{sid}/export"),
        ("DELETE", f"/v1/sessions/{sid}"),
    ]:
        r = httpx.request(method, base + path, headers=b, timeout=30)
        assert r.status_code == 404 and "my secret" not in r.text, (method, path)
    other = httpx.post(
        f"{base}/v1/chat", json={"message": "hi", "session_id": sid}, headers=b, timeout=30
    )
    assert other.status_code == 404
    assert httpx.get(f"{base}/v1/sessions", headers=b).json()["count"] == 0
    mine = httpx.get(f"{base}/v1/sessions/{sid}/messages", headers=a).json()["data"]
    assert mine[0]["content"] == "my secret"
    export = httpx.get(f"{base}/v1/sessions/{sid}/export", headers=a)
    assert export.status_code == 200 and len(export.text.splitlines()) == 3
    assert httpx.delete(f"{base}/v1/sessions/{sid}", headers=a).status_code == 204
    assert httpx.get(f"{base}/v1/sessions/{sid}/messages", headers=a).status_code == 404
