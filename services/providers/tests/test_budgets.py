"""Budgets: CRUD, 402 before spending, and no overspend under concurrent calls."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from openrouter_gateway import price_of
from openrouter_gateway.simulator import create_simulator_app
from services.kit.app import create_app, open_database
from services.kit.serve import load_slice
from services.kit.testing import TEST_TOKEN, serve_app, settings_for_tests
from services.providers import budgets
from services.providers.slice import create_slice

H = {"X-Internal-Token": TEST_TOKEN}
CALL = {
    "model": "openai/gpt-4o-mini",
    "messages": [{"role": "user", "content": "Hello!"}],
    "max_tokens": 50,
}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[httpx.Client]:
    with serve_app(create_simulator_app()) as sim_url:
        sim_port = int(sim_url.rsplit(":", 1)[1])
        settings = settings_for_tests(tmp_path, simulator={"port": sim_port})
        with (
            serve_app(create_app(create_slice(), settings)) as url,
            httpx.Client(base_url=url, headers=H, timeout=30) as client,
        ):
            yield client


def test_budget_crud_and_validation(api: httpx.Client) -> None:
    made = api.post("/v1/budgets", json={"scope": "global", "window": "daily", "limit_usd": 2.5})
    assert made.status_code == 201, made.text
    b = made.json()
    assert b["limit_usd"] == 2.5 and b["remaining_usd"] == 2.5 and b["subject"] is None
    again = api.post("/v1/budgets", json={"scope": "global", "window": "daily", "limit_usd": 1})
    assert again.status_code == 409
    for body, text in [
        ({"scope": "global", "subject": "x", "window": "daily", "limit_usd": 1}, "no subject"),
        ({"scope": "api_key", "window": "daily", "limit_usd": 1}, "needs a subject"),
        ({"scope": "global", "window": "weekly", "limit_usd": 1}, "body.window"),
        ({"scope": "global", "window": "total", "limit_usd": -1}, "body.limit_usd"),
    ]:
        r = api.post("/v1/budgets", json=body)
        assert r.status_code == 422 and text in r.text, (body, r.text)
    patched = api.patch(f"/v1/budgets/{b['id']}", json={"limit_usd": 3})
    assert patched.json()["limit_usd"] == 3
    assert api.get("/v1/budgets").json()["count"] == 1
    assert api.delete(f"/v1/budgets/{b['id']}").status_code == 204
    assert api.get(f"/v1/budgets/{b['id']}").status_code == 404


def test_call_over_budget_is_402_before_any_spend(api: httpx.Client) -> None:
    api.post("/v1/budgets", json={"scope": "global", "window": "total", "limit_usd": 0.000001})
    r = api.post("/v1/chat/completions", json=CALL)
    assert r.status_code == 402
    err = r.json()["error"]
    assert err["code"] == "budget_exceeded" and "would be exceeded" in err["message"]
    usage = api.get("/v1/usage").json()
    assert usage["total_cost_usd"] == 0 and usage["data"][0]["outcome"] == "budget_exceeded"


def test_key_budget_only_governs_that_key(api: httpx.Client) -> None:
    api.post(
        "/v1/budgets",
        json={"scope": "api_key", "subject": "key1", "window": "monthly", "limit_usd": 0},
    )
    assert (
        api.post("/v1/chat/completions", json=CALL, headers={"X-API-Key-ID": "key1"}).status_code
        == 402
    )
    assert (
        api.post("/v1/chat/completions", json=CALL, headers={"X-API-Key-ID": "key2"}).status_code
        == 200
    )
    assert api.post("/v1/chat/completions", json=CALL).status_code == 200


def test_budget_needs_a_priced_model(api: httpx.Client) -> None:
    api.post("/v1/budgets", json={"scope": "global", "window": "daily", "limit_usd": 10})
    r = api.post("/v1/chat/completions", json={**CALL, "model": "nope/unpriced"})
    assert r.status_code == 400 and "no known price" in r.json()["error"]["message"]


async def test_concurrent_calls_never_overspend(api: httpx.Client) -> None:
    worst = budgets.to_usd(
        budgets.worst_case_nusd(
            model=CALL["model"], payload=CALL, max_tokens=CALL["max_tokens"], price_of=price_of
        )
    )
    limit = worst * 4.5  # room for four calls in flight at once, at their worst
    b = api.post(
        "/v1/budgets",
        json={"scope": "slice", "subject": "agent_core", "window": "daily", "limit_usd": limit},
    ).json()
    async with httpx.AsyncClient(
        base_url=str(api.base_url), timeout=30, headers={**H, "X-Caller": "agent_core"}
    ) as client:
        answers = await asyncio.gather(
            *(client.post("/v1/chat/completions", json=CALL) for _ in range(40))
        )
    codes = [a.status_code for a in answers]
    assert set(codes) <= {200, 402}
    assert codes.count(200) >= 4 and codes.count(402) >= 1
    after = api.get(f"/v1/budgets/{b['id']}").json()
    ledger = api.get("/v1/usage", params={"limit": 1000}).json()
    assert after["reserved_usd"] == 0  # every hold settled
    assert after["spent_usd"] <= limit
    assert after["spent_usd"] == pytest.approx(ledger["total_cost_usd"], abs=1e-9)
    assert sum(1 for r in ledger["data"] if r["outcome"] == "ok") == codes.count(200)


def test_stale_holds_are_released(tmp_path: Path) -> None:
    db = open_database(load_slice("providers"), settings_for_tests(tmp_path))
    try:
        with db.session() as s:
            from services.providers.schemas import BudgetCreate

            bid = budgets.create_budget(
                session=s, data=BudgetCreate(scope="global", window="total", limit_usd=1.0)
            ).id
        long_ago = datetime.now(UTC) - timedelta(hours=1)
        with db.session() as s:
            governing = budgets.applicable(s, caller=None, api_key_id=None)
            budgets.reserve(
                session=s, amount_nusd=budgets.to_nusd(0.4), governing=governing, now=long_ago
            )
        with db.session() as s:
            assert budgets.get_budget(session=s, budget_id=bid).reserved_usd == pytest.approx(0.4)
            assert budgets.release_stale(session=s, older_than=timedelta(minutes=5)) == 1
        with db.session() as s:
            got = budgets.get_budget(session=s, budget_id=bid)
            assert got.reserved_usd == 0 and got.remaining_usd == 1.0
    finally:
        db.dispose()


def test_spend_report_and_budget_metrics(api: httpx.Client) -> None:
    api.post("/v1/budgets", json={"scope": "global", "window": "daily", "limit_usd": 1.0})
    for key, model in [
        ("k1", "openai/gpt-4o-mini"),
        ("k1", "openai/gpt-4o"),
        ("k2", "openai/gpt-4o"),
    ]:
        r = api.post(
            "/v1/chat/completions",
            json={**CALL, "model": model},
            headers={"X-API-Key-ID": key, "X-Caller": "agent_core"},
        )
        assert r.status_code == 200
    api.post("/v1/chat/completions", json={**CALL, "model": "nope/unknown"})  # 400, no spend

    by_model = api.get("/v1/reports/spend", params={"group_by": "model"}).json()
    rows = {r["key"]: r for r in by_model["rows"]}
    assert rows["openai/gpt-4o"]["calls"] == 2 and rows["openai/gpt-4o-mini"]["calls"] == 1
    assert by_model["rows"][0]["key"] == "openai/gpt-4o"  # most expensive first
    by_key = {
        r["key"]: r
        for r in api.get("/v1/reports/spend", params={"group_by": "api_key"}).json()["rows"]
    }
    assert by_key["k1"]["calls"] == 2 and by_key["k2"]["calls"] == 1
    by_day = api.get("/v1/reports/spend", params={"group_by": "day"}).json()
    assert by_day["total_cost_usd"] == pytest.approx(by_model["total_cost_usd"])
    assert by_day["rows"][0]["key"] == datetime.now(UTC).date().isoformat()
    bad = api.get("/v1/reports/spend", params={"group_by": "colour"})
    assert bad.status_code == 422 and "query.group_by" in bad.text
    order = api.get(
        "/v1/reports/spend",
        params={
            "group_by": "model",
            "since": "2026-01-02T00:00:00Z",
            "until": "2026-01-01T00:00:00Z",
        },
    )
    assert order.status_code == 400

    metrics = httpx.get(str(api.base_url) + "/metrics").text
    assert 'llm_budget_remaining_usd{budget_id="' in metrics
    spent = [line for line in metrics.splitlines() if line.startswith("llm_budget_spent_usd{")]
    assert float(spent[0].rsplit(" ", 1)[1]) == pytest.approx(by_model["total_cost_usd"])
