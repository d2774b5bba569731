"""Extra upstreams: chosen by model prefix, keys stored but never returned."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from aiohttp import web

from services.kit.app import create_app
from services.kit.testing import TEST_TOKEN, fake_upstream, serve_app, settings_for_tests
from services.providers.slice import create_slice

H = {"X-Internal-Token": TEST_TOKEN}
SECRET = "sk-local-0123456789-secret"


@pytest.mark.integration
async def test_prefix_routing_and_secret_keys(tmp_path: Path) -> None:
    seen: list[tuple[str, str | None]] = []

    def answer(name: str):
        async def handler(request: web.Request) -> web.Response:
            body = await request.json()
            seen.append((name, request.headers.get("Authorization")))
            return web.json_response(
                {
                    "id": f"{name}-1",
                    "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": name}}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
                }
            )

        return handler

    async with (
        fake_upstream({("POST", "/v1/chat/completions"): answer("local")}) as local,
        fake_upstream({("POST", "/v1/chat/completions"): answer("default")}) as default,
    ):
        settings = settings_for_tests(
            tmp_path, openrouter={"api_key": "sk-default", "base_url": f"{default}/v1"}
        )
        with serve_app(create_app(create_slice(), settings)) as url:
            async with httpx.AsyncClient(base_url=url, headers=H) as c:
                made = await c.post(
                    "/v1/upstreams",
                    json={
                        "name": "ollama",
                        "base_url": f"{local}/v1",
                        "api_key": SECRET,
                        "model_prefixes": ["llama3", "ollama/"],
                    },
                )
                assert made.status_code == 201, made.text
                listed = (await c.get("/v1/upstreams")).text
                for shown in (made.text, listed):
                    assert SECRET not in shown and '"has_api_key":true' in shown
                assert made.json()["api_key_hint"] == "cret"

                msgs = [{"role": "user", "content": "hi"}]
                r = await c.post(
                    "/v1/chat/completions", json={"model": "llama3.1:8b", "messages": msgs}
                )
                assert r.headers["x-upstream"] == "ollama"
                r = await c.post(
                    "/v1/chat/completions", json={"model": "openai/gpt-4o-mini", "messages": msgs}
                )
                assert r.headers["x-upstream"] == "default"
                assert seen == [("local", f"Bearer {SECRET}"), ("default", "Bearer sk-default")]

                off = await c.patch("/v1/upstreams/ollama", json={"enabled": False})
                assert off.json()["enabled"] is False
                r = await c.post(
                    "/v1/chat/completions", json={"model": "llama3.1:8b", "messages": msgs}
                )
                assert r.headers["x-upstream"] == "default"

                bad = await c.post(
                    "/v1/upstreams",
                    json={"name": "x", "base_url": "file:///etc/passwd", "model_prefixes": ["x"]},
                )
                assert bad.status_code == 422 and "body.base_url" in bad.text
                dup = await c.post(
                    "/v1/upstreams",
                    json={"name": "ollama", "base_url": f"{local}/v1", "model_prefixes": ["y"]},
                )
                assert dup.status_code == 409
                assert (await c.delete("/v1/upstreams/ollama")).status_code == 204
                assert (await c.delete("/v1/upstreams/ollama")).status_code == 404
