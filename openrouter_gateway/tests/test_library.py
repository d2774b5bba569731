"""openrouter_gateway is a library: nothing in it (tests aside) imports RefactorBot's
services, and RefactorBot's own prompts are known to the simulator only as scenario data."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from openrouter_gateway.scenario import ScenarioError, load_scenarios, parse_scenario
from openrouter_gateway.simulator import create_simulator_app

PACKAGE = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_the_library_imports_nothing_from_the_application() -> None:
    modules = [p for p in PACKAGE.rglob("*.py") if "tests" not in p.relative_to(PACKAGE).parts]
    assert len(modules) >= 8
    for path in modules:
        assert not _imports(path) & {"services", "refactorbot", "master_core", "dashboard"}, path
    # and it imports cleanly in a fresh interpreter without them loaded
    code = (
        "import sys, openrouter_gateway, openrouter_gateway.simulator;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('services','refactorbot','master_core')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_memory_consolidation_is_scenario_data() -> None:
    scenarios = load_scenarios()
    consolidation = scenarios["memory_consolidation"]
    assert consolidation.turns[0].extract is not None
    app = create_simulator_app(0)
    transcript = (
        "Conversation to consolidate:\nuser: I prefer tea in the morning. Hi.\n"
        "assistant: I will remember that my friend.\nuser: We decided to ship on Fridays."
    )
    body = {
        "model": "openai/gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Return JSON with a memories list."},
            {"role": "user", "content": transcript},
        ],
        "response_format": {"type": "json_object"},
    }

    async def ask() -> dict:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            r = await client.post("/api/v1/chat/completions", json=body)
            return r.json()

    import asyncio

    answer = asyncio.run(ask())
    memories = json.loads(answer["choices"][0]["message"]["content"])["memories"]
    assert [m["text"] for m in memories] == [
        "I prefer tea in the morning.",
        "We decided to ship on Fridays.",
    ]
    assert memories[0]["kind"] == "fact" and memories[0]["importance"] == 0.5


def test_scenarios_refuse_aliases_and_bad_patterns() -> None:
    with pytest.raises(ScenarioError, match="aliases"):
        parse_scenario("name: a\nturns: &t [{content: x}]\nx: *t\n", source="s.yaml")
    with pytest.raises(ScenarioError, match="regular expression"):
        parse_scenario("name: a\nturns: [{extract: {key: k, pattern: '('}}]\n", source="s.yaml")
    with pytest.raises(ScenarioError, match="larger than"):
        parse_scenario("x" * 300_000, source="s.yaml")
