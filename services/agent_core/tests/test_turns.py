"""agent_core's turn against real session and providers slices and the simulator."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from openrouter_gateway.scenario import Scenario, Turn
from openrouter_gateway.simulator import create_simulator_app
from services.agent_core.service import build_context, to_openai
from services.agent_core.slice import create_slice as agent_slice
from services.kit.app import create_app
from services.kit.testing import TEST_TOKEN, free_port, serve_app, settings_for_tests
from services.memory.slice import create_slice as memory_slice
from services.providers.slice import create_slice as providers_slice
from services.session.schemas import MessagePublic
from services.session.slice import create_slice as session_slice
from services.skills.slice import create_slice as skills_slice
from services.tools.slice import create_slice as tools_slice

H = {"X-Internal-Token": TEST_TOKEN}

SHIPPED = Path(__file__).resolve().parents[3] / "skills"  # the skills the repo ships


@dataclass
class Trio:
    agent: str
    session: str
    providers: str
    tools: str
    workspace: Path
    memory: str


def start_trio(
    tmp_path: Path,
    sim: FastAPI | None = None,
    tools: dict[str, object] | None = None,
    **agent_settings: object,
) -> tuple[ExitStack, Trio]:
    """agent_core with the slices it calls (session, providers, tools) and the simulator."""
    ports = {
        n: free_port()
        for n in ("agent_core", "session", "providers", "tools", "memory", "skills", "sim")
    }
    workspace = tmp_path / "workspace"
    settings = settings_for_tests(
        tmp_path,
        simulator={"port": ports["sim"]},
        agent_core={"port": ports["agent_core"], **agent_settings},
        session={"port": ports["session"]},
        providers={"port": ports["providers"]},
        memory={"port": ports["memory"], "consolidate_every_s": 0},
        skills={"port": ports["skills"], "folders": [str(SHIPPED)], "watch_every_s": 0},
        tools={
            "port": ports["tools"],
            "workspaces": {"default": str(workspace)},
            "exec_allow": ["wc", "cat", "ls", "echo"],
            "exec_unsandboxed": True,  # exec is tested in either mode
            **(tools or {}),
        },
    )
    stack = ExitStack()
    stack.enter_context(serve_app(sim or create_simulator_app(), port=ports["sim"]))
    urls = {
        name: stack.enter_context(serve_app(create_app(factory(), settings), port=ports[name]))
        for name, factory in (
            ("session", session_slice),
            ("providers", providers_slice),
            ("tools", tools_slice),
            ("memory", memory_slice),
            ("skills", skills_slice),
            ("agent_core", agent_slice),
        )
    }
    return stack, Trio(
        urls["agent_core"],
        urls["session"],
        urls["providers"],
        urls["tools"],
        workspace.resolve(),
        urls["memory"],
    )


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[Trio]:
    stack, t = start_trio(tmp_path)
    with stack:
        yield t


def test_turn_creates_session_stores_exchange_and_records_itself(trio: Trio) -> None:
    r = httpx.post(f"{trio.agent}/v1/turns", json={"message": "Hi there"}, headers=H, timeout=10)
    assert r.status_code == 200, r.text
    turn = r.json()
    assert "You said: Hi there" in turn["reply"]
    sid = turn["session_id"]
    msgs = httpx.get(f"{trio.session}/v1/sessions/{sid}/messages", headers=H).json()["data"]
    assert [(m["role"], m["content"]) for m in msgs] == [
        ("user", "Hi there"),
        ("assistant", turn["reply"]),
    ]
    recorded = httpx.get(f"{trio.agent}/v1/turns", headers=H).json()
    assert recorded["count"] == 1 and recorded["data"][0]["outcome"] == "ok"
    assert recorded["data"][0]["cost_usd"] == pytest.approx(turn["usage"]["cost_usd"])
    assert httpx.get(f"{trio.agent}/ready").json()["checks"]["session"]["ok"] is True
    assert 'agent_turns_total{outcome="ok"} 1.0' in httpx.get(f"{trio.agent}/metrics").text
    llm = httpx.get(f"{trio.providers}/metrics").text
    assert 'llm_calls_total{model="openai/gpt-4o-mini",outcome="ok"} 1.0' in llm
    assert 'llm_tokens_total{kind="prompt",model="openai/gpt-4o-mini"}' in llm
    assert 'llm_cost_usd_total{model="openai/gpt-4o-mini"}' in llm


def test_unknown_session_is_404_and_nothing_is_spent(trio: Trio) -> None:
    r = httpx.post(
        f"{trio.agent}/v1/turns",
        json={"session_id": "ghost", "message": "hi"},
        headers=H,
        timeout=10,
    )
    assert r.status_code == 404 and "ghost" in r.json()["error"]["message"]
    assert httpx.get(f"{trio.providers}/v1/usage", headers=H).json()["count"] == 0


@pytest.mark.integration
def test_llm_failure_fails_the_turn_and_stores_nothing(tmp_path: Path) -> None:
    stack, t = start_trio(tmp_path, model="nope/unknown")
    with stack:
        sid = httpx.post(f"{t.session}/v1/sessions", json={}, headers=H).json()["id"]
        r = httpx.post(
            f"{t.agent}/v1/turns", json={"session_id": sid, "message": "hi"}, headers=H, timeout=10
        )
        assert r.status_code == 404 and "nope/unknown" in r.json()["error"]["message"]
        assert httpx.get(f"{t.session}/v1/sessions/{sid}", headers=H).json()["message_count"] == 0
        row = httpx.get(f"{t.agent}/v1/turns", headers=H).json()["data"][0]
        assert row["outcome"] == "upstream_404" and "nope/unknown" in row["error"]
        assert (
            'agent_turns_total{outcome="upstream_404"} 1.0' in httpx.get(f"{t.agent}/metrics").text
        )


@pytest.mark.integration
def test_history_is_trimmed_to_the_configured_length(tmp_path: Path) -> None:
    same_answer = Scenario(name="ok", turns=[Turn(content="ok")], after_last="repeat")
    sim = create_simulator_app(scenarios={"ok": same_answer}, default_scenario="ok")
    stack, t = start_trio(tmp_path, sim, max_history_messages=2, max_message_chars=50)
    with stack:
        first = httpx.post(
            f"{t.agent}/v1/turns", json={"message": "one"}, headers=H, timeout=10
        ).json()
        sid = first["session_id"]
        for text in ("two", "six", "ten"):  # same length: same prompt size if trimmed
            httpx.post(
                f"{t.agent}/v1/turns",
                json={"session_id": sid, "message": text},
                headers=H,
                timeout=10,
            )
        rows = httpx.get(f"{t.agent}/v1/turns", headers=H).json()["data"]
        assert sorted(r["history_messages"] for r in rows) == [0, 2, 2, 2]
        assert len({r["prompt_tokens"] for r in rows[:2]}) == 1  # a window, not a growing log
        too_long = httpx.post(
            f"{t.agent}/v1/turns", json={"session_id": sid, "message": "x" * 51}, headers=H
        )
        assert too_long.status_code == 413


def test_context_order_and_trimming() -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    stored = [
        MessagePublic(id=1, session_id="s", seq=1, role="user", content="q", created_at=now),
        MessagePublic(
            id=2,
            session_id="s",
            seq=2,
            role="assistant",
            content=None,
            created_at=now,
            tool_calls=[{"id": "c", "type": "function", "function": {"name": "f"}}],
        ),
        MessagePublic(
            id=3, session_id="s", seq=3, role="tool", content="r", tool_call_id="c", created_at=now
        ),
    ]
    history = [to_openai(m) for m in stored]
    msgs = build_context(system_prompt="sys", history=history, budget_tokens=1_000)
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool"]
    assert msgs[2]["tool_calls"][0]["id"] == "c" and msgs[3]["tool_call_id"] == "c"
    # a budget too small for the user message drops the whole exchange, never leaving a
    # tool result without its call
    tight = build_context(system_prompt="", history=history, budget_tokens=30)
    assert tight == [] or tight[0]["role"] == "user"
    assert build_context(system_prompt="", history=[], budget_tokens=10) == []
