"""The logs of a real fleet never hold what users wrote, tool arguments or keys.

A fleet of its own (its logs rotated small, every rotated file kept, the dashboard on) runs
chat turns carrying planted secrets: in the message, in a password, in the Authorization
header, in a tool call's arguments (a simulator scenario writes them to a file), in the
OpenAI-compatible endpoint, in refused requests. Then every file under logs/ is searched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from refactorbot.testing import ADMIN_KEY, RunningFleet, fleet_process
from services.kit.testing import free_port

pytestmark = [pytest.mark.integration]

SECRET = "sk-or-v1-PLANTED0f3c9a7e5b1d2468ace13579bdf02468"
PASSWORD = "Hunter2-PLANTED-pw"
PHRASE = "zebra quartz lighthouse"  # the message's own words
SCENARIO = f"""
name: planted_tool_secret
description: writes the planted secret to a file with a tool, then answers
match: "(?i)planted secret test"
turns:
  - tool_calls:
      - name: write_file
        arguments: {{path: notes.txt, content: "key {SECRET} password {PASSWORD}"}}
  - content: "Stored."
"""
# An upstream whose error text echoes a key: the retry is logged, the key must not be.
ECHO_SCENARIO = f"""
name: planted_upstream_echo
description: fails once with an error message carrying the key, then answers
match: "(?i)planted upstream echo"
turns:
  - fault: {{status: 503, times: 1, message: "overloaded; key {SECRET} or {ADMIN_KEY}"}}
    content: "Recovered."
"""
NEEDLES = {"secret": SECRET, "password": PASSWORD, "message": PHRASE, "api key": ADMIN_KEY}


@pytest.fixture(scope="module")
def secret_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    tmp = tmp_path_factory.mktemp("secret_fleet")
    scenarios = tmp / "scenarios"
    scenarios.mkdir()
    (scenarios / "planted.yaml").write_text(SCENARIO)
    (scenarios / "echo.yaml").write_text(ECHO_SCENARIO)
    env = {
        "REFACTORBOT_SIMULATOR__SCENARIOS_DIR": str(scenarios),
        "REFACTORBOT_LOGGING__MAX_BYTES": "2048",  # rotate often ...
        "REFACTORBOT_LOGGING__BACKUP_COUNT": "1000",  # ... and keep every file to search
        "REFACTORBOT_DASHBOARD__ENABLED": "true",
        "REFACTORBOT_DASHBOARD__PORT": str(free_port()),
    }
    with fleet_process(tmp, extra_env=env) as running:
        yield running


def test_planted_secrets_reach_no_log_file(secret_fleet: RunningFleet) -> None:
    fleet = secret_fleet
    message = f"planted secret test: {PHRASE}. My password is {PASSWORD}, my key {SECRET}"
    with fleet.master as c:
        turn = c.post("/v1/chat", json={"message": message})
        assert turn.status_code == 200, turn.text
        assert turn.json()["reply"] == "Stored."  # after the scripted tool call
        streamed = c.post("/v1/chat", json={"message": message, "stream": True})
        assert streamed.status_code == 200
        openai_style = c.post(
            "/v1/chat/completions",
            json={"model": "agent", "messages": [{"role": "user", "content": message}]},
        )
        assert openai_style.status_code == 200, openai_style.text
        refused = c.post("/v1/chat", json={"message": message, "session_id": 42, "x": SECRET})
        assert refused.status_code == 422
        echoed = c.post("/v1/chat", json={"message": "planted upstream echo"})
        assert echoed.json()["reply"] == "Recovered.", echoed.text
    wrong_key = httpx.post(
        fleet.url("master_core") + "/v1/chat",
        json={"message": message},
        headers={"Authorization": f"Bearer {SECRET}"},
    )
    assert wrong_key.status_code == 401
    with fleet.internal("providers") as p:  # straight to the LLM gateway
        direct = p.post(
            "/v1/chat/completions",
            json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": PHRASE}]},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        assert direct.status_code == 200, direct.text
    with fleet.internal("tools") as t:  # the tool really ran with the secret arguments
        runs = t.get("/v1/executions", params={"tool": "write_file"}).json()
        assert runs["count"] >= 1
        assert SECRET not in json.dumps(runs)  # redacted in the execution log too

    logs = fleet.tmp / "logs"
    files = sorted(p for p in logs.rglob("*") if p.is_file())
    names = {p.name for p in files}
    for service in ("master_core", "agent_core", "providers", "tools", "session"):
        assert f"{service}.log" in names
    assert {"openrouter_simulator.log", "dashboard.log"} <= names
    assert any(n.endswith(".log.1") for n in names), names  # rotated files are searched too
    found = {
        what: [p.name for p in files if needle in p.read_text(errors="replace")]
        for what, needle in NEEDLES.items()
    }
    assert found == {what: [] for what in NEEDLES}
    # the logs were written, only the secrets are missing
    text = _all_text(files)
    assert turn.headers["x-request-id"] in text
    assert "upstream call failed" in text and "[redacted]" in text  # the retry, scrubbed


def _all_text(files: list[Path]) -> str:
    return "".join(p.read_text(errors="replace") for p in files)
