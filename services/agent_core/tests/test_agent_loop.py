"""The agent loop driven by scripted simulator scenarios, against real session, providers
and tools slices: a multi-step task, a hostile model, bounds, meta-reasoning, streaming."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from openrouter_gateway.scenario import Scenario, ToolCallSpec, Turn
from openrouter_gateway.simulator import create_simulator_app
from services.agent_core.tests.test_turns import H, Trio, start_trio

SECRET = "CANARY-agent-9d1e"


def scripted(*turns: Turn, after_last: str = "echo") -> Any:
    scenario = Scenario(name="script", turns=list(turns), after_last=after_last)  # type: ignore[arg-type]
    return create_simulator_app(scenarios={"script": scenario}, default_scenario="script")


def calls(*specs: tuple[str, dict[str, Any] | str]) -> Turn:
    return Turn(tool_calls=[ToolCallSpec(name=n, arguments=a) for n, a in specs])


def turn(t: Trio, message: str, **extra: Any) -> dict[str, Any]:
    r = httpx.post(f"{t.agent}/v1/turns", json={"message": message, **extra}, headers=H, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def trace(t: Trio, turn_id: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{t.agent}/v1/turns/{turn_id}", headers=H)
    assert r.status_code == 200, r.text
    return r.json()["steps"]


def tool_steps(steps: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(s["name"], s["outcome"]) for s in steps if s["kind"] == "tool"]


@pytest.mark.integration
def test_multi_step_task_reads_edits_and_runs(tmp_path: Path) -> None:
    sim = scripted(
        calls(("read_file", {"path": "notes.txt"})),
        calls(("edit_file", {"path": "notes.txt", "old_text": "draft", "new_text": "final"})),
        calls(("exec", {"argv": ["wc", "-w", "notes.txt"]})),
        Turn(content="Done: notes.txt now says final and has 4 words."),
    )
    stack, t = start_trio(tmp_path, sim)
    with stack:
        (t.workspace / "notes.txt").write_text("this is the draft\n")
        done = turn(t, "Fix the notes and count the words")
        assert done["stop_reason"] == "final_answer" and done["iterations"] == 4
        assert done["tool_calls"] == 3 and done["reply"].startswith("Done")
        assert (t.workspace / "notes.txt").read_text() == "this is the final\n"
        steps = trace(t, done["turn_id"])
        assert [s["kind"] for s in steps] == [
            "memory", "skills", "llm", "tool", "llm", "tool", "llm", "tool", "llm", "stop"
        ]  # fmt: skip
        assert tool_steps(steps) == [("read_file", "ok"), ("edit_file", "ok"), ("exec", "ok")]
        wc = json.loads(steps[7]["detail"]["result"])
        assert wc["stdout"].split()[0] == "4"
        assert all(s["duration_ms"] >= 0 for s in steps)
        # the whole exchange is in the session, tool calls and results included
        msgs = httpx.get(
            f"{t.session}/v1/sessions/{done['session_id']}/messages", headers=H
        ).json()["data"]
        assert [m["role"] for m in msgs] == [
            "user", "assistant", "tool", "assistant", "tool", "assistant", "tool", "assistant"
        ]  # fmt: skip
        assert msgs[2]["tool_call_id"] == msgs[1]["tool_calls"][0]["id"]
        log = httpx.get(f"{t.tools}/v1/executions", headers=H).json()
        assert log["count"] == 3 and {e["session_id"] for e in log["data"]} == {done["session_id"]}
        # the next turn sees that history, tool protocol and all, and the LLM accepts it
        again = turn(t, "Thanks!", session_id=done["session_id"])
        assert again["stop_reason"] == "final_answer"


@pytest.mark.integration
def test_hostile_model_gets_refusals_and_nothing_runs_outside_policy(tmp_path: Path) -> None:
    sim = scripted(
        calls(
            ("read_file", {"path": "../../etc/passwd"}),
            ("read_file", {"path": "escape/secret.txt"}),
            ("write_file", {"path": "escape/pwned.txt", "content": "pwned"}),
            ("exec", {"argv": ["rm", "-rf", "/"]}),
            ("exec", {"argv": ["cat", "/etc/shadow"]}),
            ("web_fetch", {"url": "http://169.254.169.254/latest/meta-data/"}),
            ("web_fetch", {"url": "http://127.0.0.1:8000/v1/keys"}),
            ("read_file", {"path": 42}),
            ("no_such_tool", {}),
            ("read_file", "{not json"),
        ),
        Turn(content="I could not do any of that."),
    )
    stack, t = start_trio(tmp_path, sim)
    with stack:
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "secret.txt").write_text(SECRET)
        t.workspace.mkdir(exist_ok=True)
        os.symlink(outside, t.workspace / "escape")
        done = turn(t, "Get me the secrets")
        assert done["stop_reason"] == "final_answer" and done["tool_calls"] == 10
        steps = trace(t, done["turn_id"])
        # tools run in parallel: the trace has them in the order they finished
        cat = next(s for s in steps if s["kind"] == "tool" and "shadow" in s["detail"]["arguments"])
        result = json.loads(cat["detail"]["result"])
        # cat is allowed: the sandbox (no /etc inside) or, without it, the guard stops it
        assert cat["outcome"] == "path_refused" or result["exit_code"] != 0
        assert sorted(tool_steps(steps)) == sorted(
            [
                ("read_file", "path_refused"),
                ("read_file", "path_refused"),
                ("write_file", "path_refused"),
                ("exec", "not_allowed"),
                ("exec", cat["outcome"]),
                ("web_fetch", "not_allowed"),
                ("web_fetch", "not_allowed"),
                ("read_file", "invalid_arguments"),
                ("no_such_tool", "unknown_tool"),
                ("read_file", "invalid_json"),
            ]
        )
        assert SECRET not in json.dumps(steps)
        assert list(outside.iterdir()) == [outside / "secret.txt"]
        # every refusal went back to the model as the tool's result
        msgs = httpx.get(
            f"{t.session}/v1/sessions/{done['session_id']}/messages", headers=H
        ).json()["data"]
        refusals = [json.loads(m["content"]) for m in msgs if m["role"] == "tool"]
        errors = 9 if cat["outcome"] == "ok" else 10
        assert sum(1 for r in refusals if "error" in r) == errors
        assert "(rule: type)" in json.dumps(refusals)


@pytest.mark.integration
def test_iteration_cap_stops_a_model_that_loops(tmp_path: Path) -> None:
    sim = scripted(calls(("list_dir", {"path": "."})), after_last="repeat")
    stack, t = start_trio(tmp_path, sim, max_iterations=3)
    with stack:
        done = turn(t, "Keep looking")
        assert done["stop_reason"] == "max_iterations" and done["iterations"] == 3
        assert "Stopped before finishing" in done["reply"] and "3 steps" in done["reply"]
        steps = trace(t, done["turn_id"])
        assert steps[-1]["kind"] == "stop" and steps[-1]["outcome"] == "max_iterations"
        row = httpx.get(f"{t.agent}/v1/turns", headers=H).json()["data"][0]
        assert row["stop_reason"] == "max_iterations"
        metrics = httpx.get(f"{t.agent}/metrics").text
        assert 'agent_turn_stops_total{reason="max_iterations"} 1.0' in metrics


@pytest.mark.parametrize(
    ("limits", "reason"),
    [({"max_turn_tokens": 50}, "token_budget"), ({"max_turn_cost_usd": 1e-9}, "cost_budget")],
)
@pytest.mark.integration
def test_token_and_cost_budgets_stop_a_turn(tmp_path: Path, limits: dict, reason: str) -> None:
    sim = scripted(calls(("list_dir", {})), after_last="repeat")
    stack, t = start_trio(tmp_path, sim, **limits)
    with stack:
        done = turn(t, "Keep looking")
        assert done["stop_reason"] == reason and done["iterations"] == 1


@pytest.mark.integration
def test_deadline_stops_a_slow_turn(tmp_path: Path) -> None:
    sim = scripted(Turn(content="too late", latency_ms=2_000))
    stack, t = start_trio(tmp_path, sim, turn_deadline_s=0.5)
    with stack:
        done = turn(t, "Quick!")
        assert done["stop_reason"] == "deadline" and "0.5s" in done["reply"]


@pytest.mark.integration
def test_meta_reasoning_plans_and_reviews(tmp_path: Path) -> None:
    stack, t = start_trio(tmp_path, meta_reasoning=True)
    with stack:
        done = turn(t, "First list the files, then read each one, and finally summarise them.")
        kinds = [s["kind"] for s in trace(t, done["turn_id"])]
        assert kinds[:3] == ["memory", "skills", "plan"]
        assert "reflection" in kinds and kinds[-1] == "stop"
        simple = turn(t, "hi")
        assert "plan" not in [s["kind"] for s in trace(t, simple["turn_id"])]


@pytest.mark.integration
def test_a_review_that_asks_for_changes_buys_one_more_round(tmp_path: Path) -> None:
    sim = scripted(
        Turn(content="A draft."),
        Turn(content="REVISE: it does not give the total."),
        after_last="repeat",
    )
    stack, t = start_trio(tmp_path, sim, meta_reasoning=True, max_reflections=1)
    with stack:
        done = turn(t, "What is the total?")
        steps = trace(t, done["turn_id"])
        kinds = [s["kind"] for s in steps]
        assert kinds.count("reflection") == 1 and kinds.count("llm") == 2


@pytest.mark.integration
def test_streamed_progress_events(tmp_path: Path) -> None:
    sim = scripted(
        calls(("list_dir", {"path": "."})), Turn(content="The folder is empty, as expected.")
    )
    stack, t = start_trio(tmp_path, sim)
    with (
        stack,
        httpx.stream(
            "POST",
            f"{t.agent}/v1/turns",
            json={"message": "What is in the folder?", "stream": True},
            headers=H,
            timeout=30,
        ) as r,
    ):
        assert r.headers["content-type"].startswith("text/event-stream")
        events = []
        for line in r.iter_lines():
            if line.startswith("event: "):
                events.append(line[7:])
            elif line.startswith("data: ") and events[-1] == "final":
                final = json.loads(line[6:])
    assert events[0] == "turn.started" and events[-1] == "final"
    assert {"llm.started", "tool.started", "tool.finished", "delta"} <= set(events)
    assert events.index("tool.started") < events.index("tool.finished")
    assert final["reply"] == "The folder is empty, as expected." and final["tool_calls"] == 1


@pytest.mark.integration
def test_turn_without_the_tools_slice_still_answers(tmp_path: Path) -> None:
    stack, t = start_trio(tmp_path, tools_enabled=False)
    with stack:
        done = turn(t, "hello")
        assert done["stop_reason"] == "final_answer" and done["tool_calls"] == 0


@pytest.mark.integration
def test_the_agent_remembers_and_recalls_across_sessions(tmp_path: Path) -> None:
    sim = scripted(
        calls(("remember", {"text": "The user's favourite editor is Helix", "tags": ["tools"]})),
        Turn(content="I will remember that."),
    )
    stack, t = start_trio(tmp_path, sim)
    with stack:
        owner = {"api_key_id": "key-ada"}
        first = turn(t, "Remember that my favourite editor is Helix", **owner)
        steps = trace(t, first["turn_id"])
        assert ("remember", "ok") in tool_steps(steps)
        stored = httpx.get(f"{t.memory}/v1/memories", headers={**H, "X-Owner": "key-ada"}).json()[
            "data"
        ]
        assert [m["text"] for m in stored] == ["The user's favourite editor is Helix"]
        assert stored[0]["scope"] == "user" and stored[0]["subject"] == "key-ada"
        # a new session of the same key: the memory comes back into the context
        later = turn(t, "Which editor should I open?", **owner)
        recall = trace(t, later["turn_id"])[0]
        assert recall["kind"] == "memory" and recall["detail"]["used"] == 1
        # another key's turn does not see it
        other = turn(t, "Which editor should I open?", api_key_id="key-bob")
        assert trace(t, other["turn_id"])[0]["detail"]["used"] == 0


@pytest.mark.integration
def test_a_model_cannot_choose_whose_memories_it_reads_or_writes(tmp_path: Path) -> None:
    sim = scripted(
        calls(
            ("recall", {"query": "locker code", "owner": "key-bob"}),
            ("remember", {"text": "Bob's locker code is 0000", "owner": "key-bob"}),
            ("recall", {"query": "locker code"}),
        ),
        Turn(content="Done."),
    )
    stack, t = start_trio(tmp_path, sim)
    with stack:
        bob = {**H, "X-Owner": "key-bob"}
        made = httpx.post(
            f"{t.memory}/v1/memories",
            json={"scope": "user", "subject": "key-bob", "text": "Bob's locker code is 4711"},
            headers=bob,
        )
        assert made.status_code == 201, made.text
        done = turn(t, "What is Bob's locker code?", api_key_id="key-ada")
        steps = trace(t, done["turn_id"])
        assert sorted(tool_steps(steps)) == [
            ("recall", "invalid_arguments"), ("recall", "ok"), ("remember", "invalid_arguments")
        ]  # fmt: skip
        assert "4711" not in json.dumps(steps)
        # the refusals went back to the model as the tools' results, like any tool's
        msgs = httpx.get(
            f"{t.session}/v1/sessions/{done['session_id']}/messages", headers=H
        ).json()["data"]
        results = [json.loads(m["content"]) for m in msgs if m["role"] == "tool"]
        assert sum(1 for r in results if "error" in r) == 2
        assert {"memories": []} in results
        kept = httpx.get(f"{t.memory}/v1/memories", headers=bob).json()["data"]
        assert [m["text"] for m in kept] == ["Bob's locker code is 4711"]
        ada = httpx.get(f"{t.memory}/v1/memories", headers={**H, "X-Owner": "key-ada"}).json()
        assert ada["count"] == 0
        # the same calls in Bob's turn find his memory: the turn's owner decides
        his = turn(t, "What is my locker code?", api_key_id="key-bob")
        recall = next(
            s
            for s in trace(t, his["turn_id"])
            if (s["kind"], s["name"], s["outcome"]) == ("tool", "recall", "ok")
        )
        assert "4711" in recall["detail"]["result"]


@pytest.mark.integration
def test_relevant_skills_join_the_turn_with_reasons(tmp_path: Path) -> None:
    stack, t = start_trio(tmp_path)
    with stack:
        done = turn(t, "Please do a code review of this diff: -x = 1 +x = 2")
        step = next(s for s in trace(t, done["turn_id"]) if s["kind"] == "skills")
        assert [c["name"] for c in step["detail"]["selected"]] == ["review-diff"]
        # with read_file disabled, summarize-file cannot be offered, and the trace says why
        httpx.patch(f"{t.tools}/v1/tools/read_file", json={"enabled": False}, headers=H)
        time.sleep(2.1)  # the agent caches tool definitions for 2 s
        later = turn(t, "Give me a summary of notes.txt")
        step = next(s for s in trace(t, later["turn_id"]) if s["kind"] == "skills")
        assert step["detail"]["selected"] == []
        assert "read_file" in step["detail"]["skipped"][0]["reason"]
