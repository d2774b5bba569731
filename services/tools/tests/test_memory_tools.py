"""remember and recall: tools of the registry like the others (schema, permission, log,
metrics) that call a real memory slice, for the owner the call names beside the arguments,
never for one the arguments name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.kit.testing import TEST_TOKEN
from services.tools.builtins import BUILTINS
from services.tools.schemas import MEMORY_TOOLS
from services.tools.tests.conftest import ToolsEnv, start_tools_env

pytestmark = pytest.mark.integration

SESSION = "s-ada-1"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ToolsEnv]:
    with start_tools_env(tmp_path, with_memory=True) as e:
        yield e


def call(
    env: ToolsEnv,
    tool: str,
    arguments: dict[str, Any],
    *,
    owner: str | None = None,
    session_id: str | None = SESSION,
) -> httpx.Response:
    body: dict[str, Any] = {"arguments": arguments, "session_id": session_id, "turn_id": "t-1"}
    if owner is not None:
        body["owner"] = owner
    return env.client.post(f"/v1/tools/{tool}/call", json=body)


def memories(env: ToolsEnv, owner: str) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{env.memory_url}/v1/memories",
        headers={"X-Internal-Token": TEST_TOKEN, "X-Owner": owner},
        params={"scope": "user", "subject": owner},
    )
    assert r.status_code == 200, r.text
    return list(r.json()["data"])


def test_memory_tools_are_registered_like_the_others(env: ToolsEnv) -> None:
    assert {s.name for s in BUILTINS if s.permission == "memory"} == MEMORY_TOOLS
    tools = {t["name"]: t for t in env.client.get("/v1/tools").json()["data"]}
    assert tools["remember"]["permission"] == "memory"
    assert tools["remember"]["parameters"]["required"] == ["text"]
    assert tools["recall"]["parameters"]["additionalProperties"] is False
    offered = {t["function"]["name"] for t in env.client.get("/v1/tools/openai").json()["tools"]}
    assert offered >= MEMORY_TOOLS
    # switched off like any tool
    assert env.client.patch("/v1/tools/recall", json={"enabled": False}).status_code == 200
    assert call(env, "recall", {"query": "x"}, owner="key-ada").status_code == 403


def test_remember_then_recall_for_the_calls_owner(env: ToolsEnv) -> None:
    r = call(
        env,
        "remember",
        {"text": "Ada prefers tabs over spaces", "tags": ["style"]},
        owner="key-ada",
    )
    assert r.status_code == 200, r.text
    made = r.json()["result"]
    assert made["remembered"] == "Ada prefers tabs over spaces" and made["mentions"] == 1
    [stored] = memories(env, "key-ada")
    assert stored["owner"] == "key-ada" and stored["source_session"] == SESSION
    assert stored["tags"] == ["style"]
    found = call(env, "recall", {"query": "tabs or spaces"}, owner="key-ada").json()["result"]
    assert [m["text"] for m in found["memories"]] == ["Ada prefers tabs over spaces"]
    # logged and counted like every tool call
    log = env.client.get("/v1/executions", params={"session_id": SESSION}).json()
    assert {(e["tool"], e["outcome"]) for e in log["data"]} == {
        ("remember", "ok"),
        ("recall", "ok"),
    }
    metrics = httpx.get(str(env.client.base_url) + "/metrics").text
    assert 'tool_calls_total{outcome="ok",tool="remember"} 1.0' in metrics


def test_arguments_cannot_choose_whose_memories(env: ToolsEnv) -> None:
    assert call(env, "remember", {"text": "Bob's locker code is 4711"}, owner="key-bob").is_success
    # Ada's turn: a model naming Bob in its arguments is refused by the schema ...
    for tool, arguments in (
        ("recall", {"query": "locker code", "owner": "key-bob"}),
        ("recall", {"query": "locker code", "user": "key-bob"}),
        ("recall", {"query": "locker code", "session_id": "s-bob"}),
        ("remember", {"text": "Bob's locker code is 0000", "owner": "key-bob"}),
        ("remember", {"text": "Bob's locker code is 0000", "scope": "user", "subject": "key-bob"}),
    ):
        r = call(env, tool, arguments, owner="key-ada")
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "invalid_arguments"
        assert "additionalProperties" in r.json()["error"]["message"]
    # ... and a plain recall reads only Ada's (and this session's) memories
    found = call(env, "recall", {"query": "locker code"}, owner="key-ada").json()["result"]
    assert found["memories"] == []
    assert [m["text"] for m in memories(env, "key-bob")] == ["Bob's locker code is 4711"]
    assert memories(env, "key-ada") == []
    # the owner decides: Bob's own call finds it
    found = call(env, "recall", {"query": "locker code"}, owner="key-bob").json()["result"]
    assert [m["text"] for m in found["memories"]] == ["Bob's locker code is 4711"]


def test_without_owner_the_sessions_memories_and_never_everyones(env: ToolsEnv) -> None:
    assert call(env, "remember", {"text": "Ada likes green tea"}, owner="key-ada").is_success
    r = call(env, "remember", {"text": "This chat is about green tea"}, session_id="s-anon")
    assert r.status_code == 200, r.text
    found = call(env, "recall", {"query": "green tea"}, session_id="s-anon").json()["result"]
    assert [m["text"] for m in found["memories"]] == ["This chat is about green tea"]
    # neither owner nor session: refused, not a search across every user
    r = call(env, "recall", {"query": "green tea"}, session_id=None)
    assert r.status_code == 400 and "owner or session_id" in r.json()["error"]["message"]


def test_bad_arguments_name_the_field(env: ToolsEnv) -> None:
    r = call(env, "remember", {"text": ""}, owner="key-ada")
    assert r.status_code == 422 and "arguments.text" in r.json()["error"]["message"]
    r = call(env, "recall", {"query": "x", "limit": 500}, owner="key-ada")
    assert r.status_code == 422 and "arguments.limit" in r.json()["error"]["message"]


def test_memory_slice_down_is_an_error_with_its_status(tmp_path: Path) -> None:
    with start_tools_env(tmp_path) as env:  # nothing listens on its memory port
        r = call(env, "recall", {"query": "anything"}, owner="key-ada")
        assert r.status_code == 503, r.text
        log = env.client.get("/v1/executions", params={"tool": "recall"}).json()["data"]
        assert log[0]["outcome"] == r.json()["error"]["code"]
