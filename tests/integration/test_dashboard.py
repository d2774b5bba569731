"""The dashboard's pages, run with Streamlit's AppTest against the real fleet."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from refactorbot.testing import ADMIN_KEY, RunningFleet

pytestmark = [pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "services" / "providers" / "ui"


@pytest.fixture
def dash_env(fleet: RunningFleet, monkeypatch: pytest.MonkeyPatch) -> RunningFleet:
    monkeypatch.setenv("REFACTORBOT_API_KEY", ADMIN_KEY)
    monkeypatch.setenv("REFACTORBOT_MASTER_CORE__PORT", str(fleet.ports["master_core"]))
    monkeypatch.setenv("REFACTORBOT_CONFIG", fleet.env["REFACTORBOT_CONFIG"])
    with fleet.master as c:  # something to show
        c.post("/v1/chat", json={"message": "hello dashboard"})
    return fleet


def run(page: Path) -> AppTest:
    at = AppTest.from_file(str(page), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    return at


def test_overview_shows_every_service(dash_env: RunningFleet) -> None:
    at = run(ROOT / "dashboard" / "pages" / "overview.py")
    assert at.metric[0].value == "9 / 9"
    services = list(at.dataframe[0].value["service"])
    assert "providers" in services and "master_core" in services


def test_spend_models_and_providers_pages(dash_env: RunningFleet) -> None:
    spend = run(UI / "spend.py")
    assert spend.metric[0].value.startswith("$") and int(spend.metric[1].value) >= 1
    models = run(UI / "models.py")
    ids = list(models.dataframe[0].value["model"])
    assert "openai/gpt-4o-mini" in ids
    providers = run(UI / "upstreams.py")
    assert any("OpenRouter simulator" in m.value for m in providers.markdown)


def test_budget_form_adds_a_budget_through_master_core(dash_env: RunningFleet) -> None:
    at = run(UI / "budgets.py")
    at.selectbox[0].select("slice")
    at.text_input[0].input("tools")
    at.selectbox[1].select("monthly")
    at.number_input[0].set_value(7.5)
    at.button[0].click()
    at.run()
    assert not at.exception
    with dash_env.internal("providers") as p:
        made = [b for b in p.get("/v1/budgets").json()["data"] if b["subject"] == "tools"]
    assert made and made[0]["limit_usd"] == 7.5 and made[0]["window"] == "monthly"


AGENT_UI = ROOT / "services" / "agent_core" / "ui"
TOOLS_UI = ROOT / "services" / "tools" / "ui"


def test_agent_pages_show_turns_and_traces(dash_env: RunningFleet) -> None:
    turns = run(AGENT_UI / "turns.py")
    assert int(turns.metric[0].value) >= 1
    assert "final_answer" in list(turns.dataframe[0].value["stopped by"])
    trace = run(AGENT_UI / "traces.py")
    assert trace.metric[0].value == "final_answer"
    assert any("llm" in e.label for e in trace.expander)
    analytics = run(AGENT_UI / "analytics.py")
    assert int(analytics.metric[0].value) >= 1


def test_tools_pages_toggle_and_log(dash_env: RunningFleet) -> None:
    with dash_env.internal("tools") as t:
        t.post("/v1/tools/list_dir/call", json={"arguments": {"path": "."}})
    page = run(TOOLS_UI / "tools.py")
    assert page.metric[1].value in ("bubblewrap", "none")
    if page.metric[1].value == "none":  # the fleet's default: no exec without a sandbox
        assert any("exec is unavailable" in i.value for i in page.info)
    page.selectbox[0].select("web_fetch")
    page.checkbox[0].uncheck()
    page.button[0].click()
    page.run()
    assert not page.exception
    with dash_env.internal("tools") as t:
        tools = {x["name"]: x for x in t.get("/v1/tools").json()["data"]}
        assert tools["web_fetch"]["enabled"] is False
        t.patch("/v1/tools/web_fetch", json={"enabled": True})
    log = run(TOOLS_UI / "executions.py")
    assert int(log.metric[0].value) >= 1
    assert "list_dir" in list(log.dataframe[0].value["tool"])


SESSION_UI = ROOT / "services" / "session" / "ui"
MEMORY_UI = ROOT / "services" / "memory" / "ui"


def test_conversation_pages(dash_env: RunningFleet) -> None:
    sessions = run(SESSION_UI / "sessions.py")
    assert int(sessions.metric[0].value) >= 1
    conversation = run(SESSION_UI / "conversation.py")
    assert (
        any("hello dashboard" in m.value for m in conversation.markdown)
        or conversation.chat_message
    )
    search = run(SESSION_UI / "search.py")
    search.text_input[0].input("dashboard")
    search.run()
    assert not search.exception and int(search.metric[0].value) >= 1


def test_memory_pages(dash_env: RunningFleet) -> None:
    with dash_env.internal("memory") as m:
        made = m.post(
            "/v1/memories", json={"scope": "global", "text": "The dashboard shows memories"}
        )
        assert made.status_code == 201
        sid = m.get("/v1/memories").json()["data"][0]["id"]
    page = run(MEMORY_UI / "memories.py")
    assert int(page.metric[0].value) >= 1
    page.text_input[0].input("dashboard")
    page.run()
    assert not page.exception
    assert "The dashboard shows memories" in list(page.dataframe[0].value["text"])
    runs = run(MEMORY_UI / "consolidations.py")
    assert not runs.exception
    with dash_env.internal("memory") as m:
        m.delete(f"/v1/memories/{sid}")


def test_skills_page(dash_env: RunningFleet) -> None:
    page = run(ROOT / "services" / "skills" / "ui" / "skills.py")
    assert int(page.metric[0].value) >= 3
    assert "review-diff" in list(page.dataframe[0].value["skill"])
    page.selectbox[0].select("explain-error")
    page.run()
    page.checkbox[0].uncheck()
    page.button[0].click()
    page.run()
    assert not page.exception
    with dash_env.internal("skills") as s:
        assert s.get("/v1/skills/explain-error").json()["enabled"] is False
        s.patch("/v1/skills/explain-error", json={"enabled": True})


def test_event_bus_pages(dash_env: RunningFleet) -> None:
    with dash_env.internal("event_bus") as bus:
        bus.put("/v1/topics/dash", json={"max_deliveries": 1})
        bus.post("/v1/topics/dash/events", json={"events": [{"type": "t", "payload": 1}]})
        seq = bus.post("/v1/topics/dash/groups/g/pull", json={}).json()["data"][0]["seq"]
        bus.post("/v1/topics/dash/groups/g/nack", json={"seqs": [seq], "error": "poison"})
    topics = run(ROOT / "services" / "event_bus" / "ui" / "topics.py")
    names = list(topics.dataframe[0].value["topic"])
    assert "dash" in names and "dash.dead" in names
    # the slices' own domain events arrive through their outboxes
    assert any(n.startswith("session.") for n in names)
    dead = run(ROOT / "services" / "event_bus" / "ui" / "dead_letters.py")
    dead.selectbox[0].select("dash")
    dead.button[0].click()
    dead.run()
    assert not dead.exception
    with dash_env.internal("event_bus") as bus:
        assert bus.get("/v1/topics/dash.dead").json()["depth"] == 0
        assert bus.get("/v1/topics/dash").json()["published"] == 2


def test_keys_page_creates_rotates_and_revokes(dash_env: RunningFleet) -> None:
    page = run(ROOT / "master_core" / "ui" / "keys.py")
    assert "/" in page.metric[0].value
    page.text_input[0].input("dash-made")
    page.number_input[0].set_value(30)
    page.button[0].click()
    page.run()
    assert not page.exception
    key = next(c.value for c in page.code if c.value.startswith("rb_"))
    base = dash_env.url("master_core")
    assert httpx.get(f"{base}/v1/fleet/status", headers=bearer(key)).status_code == 200
    with dash_env.master as c:
        made = next(k for k in c.get("/v1/keys").json()["data"] if k["name"] == "dash-made")
    assert made["expires_at"] and made["state"] == "active"
    assert "dash-made" in list(page.dataframe[0].value["name"])

    page = run(ROOT / "master_core" / "ui" / "keys.py")
    page.selectbox[0].select(made["id"])
    page.button[1].click()  # rotate
    page.run()
    assert not page.exception
    new = next(c.value for c in page.code if c.value.startswith("rb_"))
    assert httpx.get(f"{base}/v1/fleet/status", headers=bearer(key)).status_code == 401
    assert httpx.get(f"{base}/v1/fleet/status", headers=bearer(new)).status_code == 200

    page.selectbox[0].select(made["id"])
    page.button[2].click()  # revoke
    page.run()
    assert not page.exception
    assert httpx.get(f"{base}/v1/fleet/status", headers=bearer(new)).status_code == 401
    with dash_env.master as c:
        states = {k["id"]: k["state"] for k in c.get("/v1/keys").json()["data"]}
    assert states[made["id"]] == "revoked"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
