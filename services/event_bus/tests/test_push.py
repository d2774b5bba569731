"""Push delivery to a subscriber's webhook (a real server on 127.0.0.1): signed, acked on
2xx, retried and finally dead-lettered when the subscriber keeps failing."""

from __future__ import annotations

import asyncio
import hmac
import json

import httpx
from aiohttp import web

from services.event_bus.push import signature
from services.event_bus.tests.conftest import publish
from services.kit.testing import fake_upstream

SECRET = "a-long-enough-webhook-secret"


async def wait_until(check, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_events_are_pushed_signed_and_acked(bus: httpx.Client) -> None:
    received: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        stamp = request.headers["X-RefactorBot-Timestamp"]
        expected = signature(SECRET, stamp, body)
        assert hmac.compare_digest(request.headers["X-RefactorBot-Signature"], expected)
        received.append(json.loads(body))
        return web.Response(status=204)

    async with fake_upstream({("POST", "/hook"): hook}) as url:
        publish(bus, "pushed", {"id": "a", "type": "t", "payload": 1})
        r = bus.put(
            "/v1/topics/pushed/groups/hooks/push", json={"url": f"{url}/hook", "secret": SECRET}
        )
        assert r.status_code == 200 and "secret" not in r.text
        publish(bus, "pushed", {"id": "b", "type": "t", "payload": 2})
        await wait_until(lambda: len(received) == 2)
        await wait_until(lambda: bus.get("/v1/topics/pushed").json()["groups"][0]["lag"] == 0)
    assert [e["payload"] for e in received] == [1, 2] and received[0]["topic"] == "pushed"


async def test_failing_subscriber_gets_retries_then_dead_letters(bus: httpx.Client) -> None:
    calls = {"n": 0}

    async def broken(request: web.Request) -> web.Response:
        calls["n"] += 1
        return web.Response(status=500)

    async with fake_upstream({("POST", "/hook"): broken}) as url:
        bus.put("/v1/topics/flaky", json={"max_deliveries": 2})
        publish(bus, "flaky", {"id": "x", "type": "t", "payload": "poison"})
        bus.put("/v1/topics/flaky/groups/hooks/push", json={"url": f"{url}/hook"})

        def dead() -> bool:
            r = bus.get("/v1/topics/flaky.dead")
            return r.status_code == 200 and r.json()["depth"] == 1

        await wait_until(dead)
    assert calls["n"] == 2
    bad = bus.put("/v1/topics/flaky/groups/hooks/push", json={"url": "file:///etc/passwd"})
    assert bad.status_code == 422
