"""The model catalog: seeded from the snapshot, served OpenAI-style, refreshed all-or-nothing."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from aiohttp import web

from openrouter_gateway.simulator import create_simulator_app
from services.kit.app import create_app
from services.kit.testing import TEST_TOKEN, fake_upstream, serve_app, settings_for_tests
from services.providers.slice import create_slice

H = {"X-Internal-Token": TEST_TOKEN}


@pytest.mark.integration
def test_models_are_served_and_refreshed_from_upstream(tmp_path: Path) -> None:
    with serve_app(create_simulator_app()) as sim_url:
        settings = settings_for_tests(tmp_path, simulator={"port": int(sim_url.rsplit(":", 1)[1])})
        with serve_app(create_app(create_slice(), settings)) as url:
            models = httpx.get(f"{url}/v1/models", headers=H).json()
            assert models["object"] == "list" and models["source"] == "snapshot"
            mini = next(m for m in models["data"] if m["id"] == "openai/gpt-4o-mini")
            assert mini["object"] == "model" and mini["owned_by"] == "openai"
            assert mini["pricing"]["prompt"] == "0.00000015" and mini["context_length"] > 0
            refreshed = httpx.post(f"{url}/v1/models/refresh", headers=H).json()
            assert refreshed["source"] == "upstream" and refreshed["count"] == len(models["data"])
        with serve_app(create_app(create_slice(), settings)) as url:  # kept across a restart
            assert httpx.get(f"{url}/v1/models", headers=H).json()["source"] == "upstream"
            status = httpx.get(f"{url}/status").json()["details"]["catalog"]
            assert status == {"models": refreshed["count"], "source": "upstream"}


@pytest.mark.integration
async def test_a_bad_upstream_catalog_changes_nothing(tmp_path: Path) -> None:
    async def bad_models(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "data": [
                    {
                        "id": "good/model",
                        "pricing": {"prompt": "0.000001", "completion": "0.000002"},
                    },
                    {"id": "evil/model", "pricing": {"prompt": "-1", "completion": "0"}},
                ]
            }
        )

    async with fake_upstream({("GET", "/v1/models"): bad_models}) as upstream:
        settings = settings_for_tests(
            tmp_path, openrouter={"api_key": "k", "base_url": f"{upstream}/v1"}
        )
        with serve_app(create_app(create_slice(), settings)) as url:
            async with httpx.AsyncClient(base_url=url, headers=H) as c:
                before = (await c.get("/v1/models")).json()
                r = await c.post("/v1/models/refresh")
                assert r.status_code == 502 and "negative price" in r.json()["error"]["message"]
                after = (await c.get("/v1/models")).json()
    assert after["data"] == before["data"] and after["source"] == "snapshot"
