"""Two replicas of the providers slice on one database: an upstream added through one is
used by the other, a catalog refreshed by one is served by the other, and the scheduled
catalog refresh is fetched by one replica, not by each."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from openrouter_gateway.catalog import load_snapshot
from services.kit.app import create_app
from services.kit.testing import TEST_TOKEN, fake_upstream, serve_app, settings_for_tests
from services.providers.slice import create_slice

pytestmark = pytest.mark.integration  # every test here starts servers or processes

H = {"X-Internal-Token": TEST_TOKEN}
RECHECK_S = 0.2


async def eventually(
    check: Callable[[], Awaitable[bool]], within_s: float = RECHECK_S + 1.5
) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, "not seen within the re-check interval"
        await asyncio.sleep(0.02)


@pytest.mark.integration
async def test_upstreams_and_catalog_changed_on_one_replica_reach_the_other(
    tmp_path: Path,
) -> None:
    fetched: list[int] = []

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(
            {
                "id": "x-1",
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            }
        )

    async def models(_: web.Request) -> web.Response:
        fetched.append(1)
        return web.json_response({"data": list(load_snapshot())})

    routes = {("POST", "/v1/chat/completions"): chat, ("GET", "/v1/models"): models}
    async with fake_upstream(routes) as local, fake_upstream(routes) as default:
        settings = settings_for_tests(
            tmp_path,
            openrouter={"api_key": "sk-default", "base_url": f"{default}/v1"},
            replicas={"registry_recheck_s": RECHECK_S},
            providers={"catalog_refresh_s": 0.3},
        )
        with (
            serve_app(create_app(create_slice(), settings)) as a,
            serve_app(create_app(create_slice(), settings)) as b,
        ):
            http = httpx.AsyncClient(headers=H)
            made = await http.post(
                f"{a}/v1/upstreams",
                json={"name": "ollama", "base_url": f"{local}/v1", "model_prefixes": ["llama3"]},
            )
            assert made.status_code == 201, made.text
            msgs = [{"role": "user", "content": "hi"}]

            async def routed_by_b(upstream: str) -> bool:
                r = await http.post(
                    f"{b}/v1/chat/completions", json={"model": "llama3.1:8b", "messages": msgs}
                )
                return bool(r.headers["x-upstream"] == upstream)

            async def b_serves_fetched_catalog() -> bool:
                status = (await http.get(f"{b}/status")).json()
                return bool(status["details"]["catalog"]["source"] == "upstream")

            await eventually(lambda: routed_by_b("ollama"))
            await http.patch(f"{a}/v1/upstreams/ollama", json={"enabled": False})
            await eventually(lambda: routed_by_b("default"))

            # the schedule: one replica fetches the catalog every 0.3 s, the other loads it
            await eventually(b_serves_fetched_catalog)
            fetched.clear()
            await asyncio.sleep(1.5)
            await http.aclose()
            assert 3 <= len(fetched) <= 6, fetched  # 5 periods: once each, not twice
