from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.event_bus.slice import create_slice
from services.kit.app import create_app
from services.kit.testing import TEST_TOKEN, serve_app, settings_for_tests


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[httpx.Client]:
    settings = settings_for_tests(tmp_path, event_bus={"sweep_every_s": 0.1})
    with (
        serve_app(create_app(create_slice(), settings)) as url,
        httpx.Client(base_url=url, headers={"X-Internal-Token": TEST_TOKEN}, timeout=30) as c,
    ):
        yield c


def publish(c: httpx.Client, topic: str, *events: dict, producer: str = "test") -> httpx.Response:
    return c.post(
        f"/v1/topics/{topic}/events", json={"events": list(events)}, headers={"X-Caller": producer}
    )


def pull(c: httpx.Client, topic: str, group: str, **body: object) -> list[dict]:
    r = c.post(f"/v1/topics/{topic}/groups/{group}/pull", json=body)
    assert r.status_code == 200, r.text
    return r.json()["data"]
