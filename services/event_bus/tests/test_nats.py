"""The same HTTP API on the NATS JetStream backend (the local server at 127.0.0.1:4222;
skipped with a reason when it is not running)."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.event_bus.slice import create_slice
from services.event_bus.tests.conftest import publish, pull
from services.kit.app import create_app
from services.kit.testing import TEST_TOKEN, serve_app, settings_for_tests


def _nats_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 4222), timeout=0.5):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _nats_up(), reason="no NATS server on 127.0.0.1:4222")


@pytest.fixture
def nbus(tmp_path: Path) -> Iterator[tuple[httpx.Client, str]]:
    settings = settings_for_tests(tmp_path, event_bus={"backend": "nats"})
    prefix = f"t{uuid.uuid4().hex[:8]}"
    with (
        serve_app(create_app(create_slice(), settings)) as url,
        httpx.Client(base_url=url, headers={"X-Internal-Token": TEST_TOKEN}, timeout=30) as c,
    ):
        yield c, prefix
        cleanup(prefix)


def cleanup(prefix: str) -> None:
    import asyncio

    import nats

    async def run() -> None:
        nc = await nats.connect("nats://127.0.0.1:4222")
        js = nc.jetstream()
        for info in await js.streams_info():
            if prefix in (info.config.description or ""):
                await js.delete_stream(info.config.name)
        await nc.close()

    asyncio.run(run())


def ev(i: int) -> dict:
    return {"id": f"e{i}", "type": "test", "payload": {"n": i}}


def test_publish_pull_ack_and_idempotency(nbus: tuple[httpx.Client, str]) -> None:
    c, p = nbus
    first = publish(c, f"{p}.orders", ev(1), ev(2), ev(3)).json()["data"]
    assert [x["duplicate"] for x in first] == [False] * 3
    again = publish(c, f"{p}.orders", ev(2)).json()["data"][0]
    assert again["duplicate"] is True and again["seq"] == first[1]["seq"]
    got = pull(c, f"{p}.orders", "billing", max=10, wait_s=1)
    assert [d["payload"]["n"] for d in got] == [1, 2, 3] and got[0]["type"] == "test"
    done = c.post(
        f"/v1/topics/{p}.orders/groups/billing/ack", json={"seqs": [d["seq"] for d in got]}
    ).json()
    assert done["done"] == [d["seq"] for d in got]
    topic = c.get(f"/v1/topics/{p}.orders").json()
    assert topic["depth"] == 3 and topic["groups"][0]["lag"] == 0
    assert c.get("/status").json()["details"]["backend"] == "nats"


def test_full_topic_is_503(nbus: tuple[httpx.Client, str]) -> None:
    c, p = nbus
    c.put(f"/v1/topics/{p}.small", json={"max_messages": 3})
    assert publish(c, f"{p}.small", ev(1), ev(2), ev(3)).status_code == 201
    full = publish(c, f"{p}.small", ev(4))
    assert full.status_code == 503 and full.headers["Retry-After"] == "1"


def test_redelivery_and_dead_letters(nbus: tuple[httpx.Client, str]) -> None:
    c, p = nbus
    c.put(f"/v1/topics/{p}.jobs", json={"visibility_timeout_s": 0.5, "max_deliveries": 2})
    publish(c, f"{p}.jobs", ev(1))
    first = pull(c, f"{p}.jobs", "w", max=1, wait_s=1)
    assert first[0]["attempt"] == 1
    time.sleep(0.7)  # not acknowledged: it comes back
    second = pull(c, f"{p}.jobs", "w", max=1, wait_s=2)
    assert second[0]["attempt"] == 2
    r = c.post(
        f"/v1/topics/{p}.jobs/groups/w/nack", json={"seqs": [second[0]["seq"]], "error": "boom"}
    ).json()
    assert r["dead_lettered"] == [second[0]["seq"]]
    dead = pull(c, f"{p}.jobs.dead", "inspect", max=5, wait_s=1)
    assert dead[0]["payload"] == {"n": 1} and dead[0]["headers"]["dead_error"] == "boom"


def test_unacknowledged_poison_reaches_dead_letters_and_topics_list(
    nbus: tuple[httpx.Client, str],
) -> None:
    c, p = nbus
    c.put(f"/v1/topics/{p}.p", json={"visibility_timeout_s": 0.3, "max_deliveries": 1})
    publish(c, f"{p}.p", ev(7))
    assert len(pull(c, f"{p}.p", "g", max=1, wait_s=1)) == 1  # and never acknowledged
    deadline = time.monotonic() + 30
    while True:
        r = c.get(f"/v1/topics/{p}.p.dead")
        if r.status_code == 200 and r.json()["depth"] == 1:
            break
        assert time.monotonic() < deadline, "no dead letter"
        pull(c, f"{p}.p", "g", max=1, wait_s=0.3)  # JetStream notices on the next pull
        time.sleep(0.2)
    names = [t["name"] for t in c.get("/v1/topics").json()["data"]]
    assert f"{p}.p" in names and f"{p}.p.dead" in names
