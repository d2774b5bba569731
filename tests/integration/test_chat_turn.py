"""A chat turn through the real fleet: master_core -> agent_core -> session + providers ->
the OpenRouter simulator, each a separate process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest

from refactorbot.testing import ADMIN_KEY, RunningFleet, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_fleet_status_reports_every_service(fleet: RunningFleet) -> None:
    with fleet.master as c:
        body = c.get("/v1/fleet/status").json()
    assert body["ok"] is True
    assert set(body["services"]) == {
        "master_core",
        "agent_core",
        "tools",
        "memory",
        "communication",
        "session",
        "providers",
        "skills",
        "event_bus",
    }
    assert body["services"]["providers"]["status"]["details"]["llm_mode"].startswith(
        "OpenRouter simulator"
    )
    assert body["services"]["tools"]["status"]["healthy"] is True


def test_chat_turn_stores_history_and_records_usage(fleet: RunningFleet) -> None:
    with fleet.master as c:
        first = c.post(
            "/v1/chat",
            json={"message": "What is RefactorBot?"},
            headers={"X-Request-ID": "itest-turn-1"},
        )
        assert first.status_code == 200, first.text
        turn = first.json()
        sid = turn["session_id"]
        assert "You said: What is RefactorBot?" in turn["reply"]
        assert turn["model"] == "openai/gpt-4o-mini"
        assert turn["usage"]["total_tokens"] > 0 and turn["usage"]["cost_usd"] > 0
        assert first.headers["x-request-id"] == "itest-turn-1"

        second = c.post("/v1/chat", json={"session_id": sid, "message": "And then?"}).json()
        assert second["session_id"] == sid
        # the second turn carried the first exchange as history
        assert second["usage"]["prompt_tokens"] > turn["usage"]["prompt_tokens"]

        history = c.get(f"/v1/sessions/{sid}/messages").json()
    assert [(m["role"], m["seq"]) for m in history["data"]] == [
        ("user", 1),
        ("assistant", 2),
        ("user", 3),
        ("assistant", 4),
    ]
    assert history["data"][1]["content"] == turn["reply"]

    with fleet.internal("providers") as p:
        usage = p.get("/v1/usage", params={"session_id": sid}).json()
    assert usage["count"] == 2
    assert {r["outcome"] for r in usage["data"]} == {"ok"}
    assert usage["data"][-1]["generation_id"].startswith("gen-")
    assert usage["total_cost_usd"] == pytest.approx(
        turn["usage"]["cost_usd"] + second["usage"]["cost_usd"]
    )
    with fleet.internal("agent_core") as a:
        turns = a.get("/v1/turns", params={"session_id": sid}).json()
    assert turns["count"] == 2

    # the caller's request id reached every service the turn touched
    for name in ("master_core", "agent_core", "session", "providers"):
        assert "itest-turn-1" in fleet.log(name), name


def test_history_survives_sigkill_of_the_session_service(fleet: RunningFleet) -> None:
    with fleet.master as c:
        sid = c.post("/v1/chat", json={"message": "remember this"}).json()["session_id"]
        old_pid = fleet.pid("session")
        os.kill(old_pid, signal.SIGKILL)
        wait_until(lambda: fleet.pid("session") != old_pid, 30, "the session restart")
        wait_until(
            lambda: httpx.get(fleet.url("session") + "/ready").status_code == 200,
            60,
            "the restarted session service",
        )
        history = c.get(f"/v1/sessions/{sid}/messages").json()
        assert history["data"][0]["content"] == "remember this"
        again = c.post("/v1/chat", json={"session_id": sid, "message": "still there?"})
        assert again.status_code == 200
        assert c.get(f"/v1/sessions/{sid}/messages").json()["count"] == 4
    fleet_log = (fleet.tmp / "logs" / "fleet.log").read_text()
    assert "session exited with code -9" in fleet_log and "session restarted" in fleet_log


def test_bad_requests_get_clear_4xx(fleet: RunningFleet) -> None:
    url = fleet.url("master_core")
    no_key = httpx.post(f"{url}/v1/chat", json={"message": "hi"})
    assert no_key.status_code == 401 and "Bearer" in no_key.json()["error"]["message"]
    bad_key = httpx.post(
        f"{url}/v1/chat", json={"message": "hi"}, headers={"Authorization": "Bearer rb_wrong"}
    )
    assert bad_key.status_code == 401
    assert bad_key.json()["error"]["message"] == "invalid API key"
    with fleet.master as c:
        malformed = c.post(
            "/v1/chat", content=b"{oops", headers={"Content-Type": "application/json"}
        )
        assert malformed.status_code == 422
        missing = c.post("/v1/chat", json={"msg": "hi"})
        assert missing.status_code == 422 and "body.message" in missing.json()["error"]["message"]
        unknown = c.post("/v1/chat", json={"session_id": "no-such-session", "message": "hi"})
        assert unknown.status_code == 404
        assert unknown.json()["error"]["message"] == "session 'no-such-session' not found"
    with fleet.internal("session") as s:  # internal routes refuse callers without the token
        assert httpx.get(fleet.url("session") + "/v1/sessions").status_code == 401
        assert s.get("/v1/sessions").status_code == 200


def test_admin_makes_keys_that_work_and_cannot_make_more(fleet: RunningFleet) -> None:
    with fleet.master as c:
        made = c.post("/v1/keys", json={"name": "alice"})
        assert made.status_code == 201
        key = made.json()["key"]
    alice = {"Authorization": f"Bearer {key}"}
    url = fleet.url("master_core")
    assert (
        httpx.post(f"{url}/v1/chat", json={"message": "hi"}, headers=alice, timeout=30).status_code
        == 200
    )
    assert httpx.post(f"{url}/v1/keys", json={"name": "x"}, headers=alice).status_code == 403


def test_cli_status_and_chat_talk_to_the_fleet(fleet: RunningFleet) -> None:
    env = {**fleet.env, "REFACTORBOT_API_KEY": ADMIN_KEY}
    status = subprocess.run(
        [sys.executable, "-m", "refactorbot", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    assert "master_core" in status.stdout and "providers" in status.stdout
    chat = subprocess.run(
        [sys.executable, "-m", "refactorbot", "chat", "hello from the CLI"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert chat.returncode == 0, chat.stderr
    assert "You said: hello from the CLI" in chat.stdout
    assert "--session" in chat.stderr


def test_admin_window_onto_slices_and_a_budget_enforced_end_to_end(fleet: RunningFleet) -> None:
    url = fleet.url("master_core")
    with fleet.master as admin:
        bob = admin.post("/v1/keys", json={"name": "bob"}).json()
        usage = admin.get("/v1/admin/providers/usage", params={"limit": 5})
        assert usage.status_code == 200 and "total_cost_usd" in usage.json()
        assert admin.get("/v1/admin/nothing/usage").status_code == 404
        sneaky = admin.get("/v1/admin/providers/usage/%2E%2E/%2E%2E/status")
        assert sneaky.status_code == 400
        made = admin.post(
            "/v1/admin/providers/budgets",
            json={"scope": "api_key", "subject": bob["id"], "window": "daily", "limit_usd": 0},
        )
        assert made.status_code == 201, made.text
    as_bob = {"Authorization": f"Bearer {bob['key']}"}
    assert httpx.get(f"{url}/v1/admin/providers/usage", headers=as_bob).status_code == 403
    refused = httpx.post(f"{url}/v1/chat", json={"message": "hi"}, headers=as_bob, timeout=30)
    assert refused.status_code == 402
    assert "daily budget for api_key" in refused.json()["error"]["message"]
