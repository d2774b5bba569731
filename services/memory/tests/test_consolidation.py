"""Consolidation: history from the session slice, through the LLM gateway (the simulator,
scripted or in JSON mode), into memories; near-duplicates merged, sources untouched,
prompts and outputs recorded, a cursor so nothing is read twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from openrouter_gateway.scenario import Scenario, Turn
from openrouter_gateway.simulator import create_simulator_app
from services.kit.app import create_app
from services.kit.testing import TEST_TOKEN, free_port, serve_app, settings_for_tests
from services.memory.slice import create_slice as memory_slice
from services.providers.slice import create_slice as providers_slice
from services.session.slice import create_slice as session_slice

H = {"X-Internal-Token": TEST_TOKEN}
EXTRACTED = {
    "memories": [
        {"text": "The user prefers tea over coffee", "kind": "preference", "importance": 0.6},
        {"text": "The user prefers tea over coffee.", "kind": "preference", "importance": 0.7},
        {"text": "The team decided to ship on Fridays", "kind": "decision", "tags": ["release"]},
        {"text": "", "kind": "fact"},
    ]
}


@dataclass
class Stack:
    session: httpx.Client
    memory: httpx.Client


def start(tmp_path: Path, sim_scenarios: dict | None) -> tuple[ExitStack, Stack]:
    ports = {n: free_port() for n in ("session", "providers", "memory", "sim")}
    settings = settings_for_tests(
        tmp_path,
        simulator={"port": ports["sim"]},
        session={"port": ports["session"]},
        providers={"port": ports["providers"]},
        memory={"port": ports["memory"], "consolidate_every_s": 0, "consolidate_min_age_s": 0},
    )
    stack = ExitStack()
    sim = (
        create_simulator_app(scenarios=sim_scenarios)
        if sim_scenarios is not None
        else create_simulator_app()
    )
    stack.enter_context(serve_app(sim, port=ports["sim"]))
    urls = {
        name: stack.enter_context(serve_app(create_app(f(), settings), port=ports[name]))
        for name, f in (
            ("session", session_slice),
            ("providers", providers_slice),
            ("memory", memory_slice),
        )
    }
    clients = {n: stack.enter_context(httpx.Client(base_url=u, headers=H)) for n, u in urls.items()}
    return stack, Stack(clients["session"], clients["memory"])


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[Stack]:
    scenario = Scenario(
        name="consolidate",
        match="^Conversation to consolidate",
        turns=[Turn(content=json.dumps(EXTRACTED))],
        after_last="repeat",
    )
    stack, s = start(tmp_path, {"consolidate": scenario})
    with stack:
        yield s


def chat(s: Stack, owner: str | None, *texts: str) -> str:
    headers = {"X-Owner": owner} if owner else {}
    sid = s.session.post("/v1/sessions", json={}, headers=headers).json()["id"]
    for i, t in enumerate(texts):
        role = "user" if i % 2 == 0 else "assistant"
        s.session.post(
            f"/v1/sessions/{sid}/messages",
            json={"messages": [{"role": role, "content": t}]},
            headers=headers,
        )
    return sid


def test_consolidation_extracts_merges_and_records(scripted: Stack) -> None:
    sid = chat(scripted, "key-ada", "I prefer tea, never coffee.", "Noted!", "Ship on Fridays.")
    before = scripted.session.get(f"/v1/sessions/{sid}/messages").json()
    run = scripted.memory.post("/v1/consolidations", json={"session_id": sid})
    assert run.status_code == 201, run.text
    r = run.json()
    assert r["status"] == "ok" and r["created"] == 2 and r["merged"] == 1
    assert r["from_seq"] == 1 and r["to_seq"] == 3
    assert "Conversation to consolidate" in r["prompt"] and "I prefer tea" in r["prompt"]
    assert json.loads(r["output"]) == EXTRACTED and r["cost_usd"] > 0
    memories = scripted.memory.get("/v1/memories", headers={"X-Owner": "key-ada"}).json()
    assert memories["count"] == 2
    tea = next(m for m in memories["data"] if "coffee" in m["text"])
    assert tea["scope"] == "user" and tea["subject"] == "key-ada" and tea["owner"] == "key-ada"
    assert tea["mentions"] == 2 and tea["importance"] == 0.7 and tea["source_session"] == sid
    # the source messages are untouched
    assert scripted.session.get(f"/v1/sessions/{sid}/messages").json() == before
    # nothing new: the cursor moved
    again = scripted.memory.post("/v1/consolidations", json={"session_id": sid}).json()
    assert again["status"] == "nothing_new" and again["created"] == 0
    runs = scripted.memory.get("/v1/consolidations", params={"session_id": sid}).json()
    assert runs["count"] == 2
    # another key does not see them
    assert scripted.memory.get("/v1/memories", headers={"X-Owner": "key-bob"}).json()["count"] == 0


def test_too_recent_messages_wait(scripted: Stack) -> None:
    sid = chat(scripted, None, "I like jazz.")
    run = scripted.memory.post(
        "/v1/consolidations", json={"session_id": sid, "min_age_s": 3600}
    ).json()
    assert run["status"] == "nothing_new"


@pytest.mark.integration
def test_json_mode_simulator_works_offline(tmp_path: Path) -> None:
    stack, s = start(tmp_path, None)  # the shipped scenarios; JSON mode answers
    with stack:
        sid = chat(s, None, "Hello there. I live in Lyon and my cat is called Pixel.", "Nice!")
        run = s.memory.post("/v1/consolidations", json={"session_id": sid}).json()
        assert run["status"] == "ok" and run["created"] == 1
        (m,) = s.memory.get("/v1/memories").json()["data"]
        assert m["scope"] == "session" and m["subject"] == sid and "Lyon" in m["text"]


@pytest.mark.integration
def test_bad_model_output_is_a_failed_run_not_a_crash(tmp_path: Path) -> None:
    bad = Scenario(
        name="bad", match="^Conversation to consolidate", turns=[Turn(content="Sure! Here:")]
    )
    stack, s = start(tmp_path, {"bad": bad})
    with stack:
        sid = chat(s, None, "I use vim.")
        run = s.memory.post("/v1/consolidations", json={"session_id": sid}).json()
        assert run["status"] == "failed" and "JSON" in run["error"]
        assert run["output"] == "Sure! Here:"
        retry = s.memory.post("/v1/consolidations", json={"session_id": sid}).json()
        assert retry["from_seq"] == 1  # the cursor did not move past what failed
        missing = s.memory.post("/v1/consolidations", json={"session_id": "ghost"})
        assert missing.status_code == 404
