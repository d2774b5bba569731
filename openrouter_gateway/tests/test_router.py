"""The model router: accuracy on labelled prompts, cost against always-strongest, and the
capability rules."""

from __future__ import annotations

import json
from decimal import Decimal
from importlib import resources

import pytest

from openrouter_gateway import load_snapshot
from openrouter_gateway.router import EXPECTED_COMPLETION, NoModelFits, assess, route

CATALOG = {m["id"]: m for m in load_snapshot()}
STRONGEST = "anthropic/claude-3.5-sonnet"


def labelled(name: str) -> list[dict[str, str]]:
    text = resources.files("openrouter_gateway").joinpath(f"data/{name}").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def accuracy(rows: list[dict[str, str]]) -> float:
    hits = sum(assess([{"role": "user", "content": r["prompt"]}]).tier == r["label"] for r in rows)
    return hits / len(rows)


def test_tier_accuracy_on_labelled_prompts(capsys: pytest.CaptureFixture[str]) -> None:
    tuning, heldout = labelled("routing_eval.jsonl"), labelled("routing_heldout.jsonl")
    assert len(tuning) >= 60 and len(heldout) >= 20
    for tier in ("simple", "medium", "complex", "reasoning"):
        assert sum(r["label"] == tier for r in tuning) >= 15
    tuned, held = accuracy(tuning), accuracy(heldout)
    with capsys.disabled():
        print(
            f"\nrouter accuracy: {tuned:.1%} on the {len(tuning)} prompts it was tuned on, "
            f"{held:.1%} on {len(heldout)} held-out prompts"
        )
    assert tuned >= 0.9
    assert held >= 0.8


def test_routing_costs_far_less_than_always_the_strongest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = labelled("routing_eval.jsonl")
    routed = strongest = Decimal(0)
    for r in rows:
        payload = {"messages": [{"role": "user", "content": r["prompt"]}]}
        decision = route(payload, CATALOG)
        tokens = len(r["prompt"]) // 4 + 8
        completion = EXPECTED_COMPLETION[decision.tier]
        for model, acc in ((decision.model, "routed"), (STRONGEST, "strongest")):
            p = CATALOG[model]["pricing"]
            cost = Decimal(p["prompt"]) * tokens + Decimal(p["completion"]) * completion
            if acc == "routed":
                routed += cost
            else:
                strongest += cost
    with capsys.disabled():
        print(
            f"cost of the {len(rows)} prompts: routed ${routed:.4f}, always {STRONGEST} "
            f"${strongest:.4f} ({routed / strongest:.0%})"
        )
    assert routed < strongest / 2


def test_decisions_explain_themselves_and_pick_the_cheapest_capable() -> None:
    simple = route({"messages": [{"role": "user", "content": "hi!"}]}, CATALOG)
    assert simple.tier == "simple"
    assert simple.model == "meta-llama/llama-3.1-8b-instruct"  # the cheapest in the snapshot
    assert "simple request" in simple.reason and "cheapest" in simple.reason
    assert simple.model not in simple.fallbacks and len(simple.fallbacks) == 2
    hard = route(
        {
            "messages": [
                {"role": "user", "content": "Prove that 7 is prime, rigorously, by deduction."}
            ]
        },
        CATALOG,
    )
    assert hard.tier == "reasoning" and hard.model in {
        "deepseek/deepseek-r1",
        "openai/o3-mini",
        "deepseek/deepseek-chat",
    }


def test_capability_matching() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    with_tools = route(
        {
            "messages": [{"role": "user", "content": "Prove it is optimal, rigorously."}],
            "tools": tools,
        },
        CATALOG,
    )
    assert "tools" in CATALOG[with_tools.model]["supported_parameters"]
    assert with_tools.rejected.get("deepseek/deepseek-r1") == "no tool calling"
    image = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is in this picture?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            }
        ]
    }
    seen = route(image, CATALOG)
    assert "image" in CATALOG[seen.model]["architecture"]["input_modalities"]
    huge = {"messages": [{"role": "user", "content": "x " * 250_000}]}  # ~170k tokens
    long = route(huge, CATALOG)
    assert long.model in {"openai/o3-mini", "anthropic/claude-3.5-sonnet"}  # 200k windows
    assert long.rejected["deepseek/deepseek-chat"].startswith("context 163840 <")


def test_max_price_and_no_fit() -> None:
    ask = {
        "messages": [
            {
                "role": "user",
                "content": "Design a distributed cache architecture, "
                "with trade-offs, failure modes and a migration plan.",
            }
        ]
    }
    cheap = route(ask, CATALOG, max_price_usd=0.01)
    assert cheap.estimated_cost_usd <= 0.01
    with pytest.raises(NoModelFits, match="complex request under \\$1e-07"):
        route(ask, CATALOG, max_price_usd=0.0000001)


def test_assessment_is_deterministic_and_reports_signals() -> None:
    msgs = [{"role": "user", "content": "```python\nprint(1)\n```\nrefactor this and add tests"}]
    a, b = assess(msgs), assess(msgs)
    assert a == b and a.signals["code"] >= 1 and a.tier == "complex"
