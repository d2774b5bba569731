"""The transactional outbox: a slice's domain events reach the bus, wait on disk while the
bus is away, and survive the slice being SIGKILLed between its commit and the relay."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from services.event_bus.slice import create_slice as bus_slice
from services.kit.app import create_app
from services.kit.testing import TEST_TOKEN, free_port, serve_app, settings_for_tests, start_service

H = {"X-Internal-Token": TEST_TOKEN}
TOPIC = "session.message_appended"


def drain(bus: str, group: str) -> list[dict]:
    seen: list[dict] = []
    while True:
        r = httpx.post(f"{bus}/v1/topics/{TOPIC}/groups/{group}/pull", json={"max": 500}, headers=H)
        if r.status_code == 404:
            return seen
        got = r.json()["data"]
        if not got:
            return seen
        seen += got
        httpx.post(
            f"{bus}/v1/topics/{TOPIC}/groups/{group}/ack",
            json={"seqs": [d["seq"] for d in got]},
            headers=H,
        )


def wait_for(check, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.integration
@pytest.mark.slow
def test_events_reach_the_bus_even_across_a_sigkill_and_a_bus_outage(tmp_path: Path) -> None:
    bus_port, session_port = free_port(), free_port()
    bus_settings = settings_for_tests(tmp_path / "bus", event_bus={"port": bus_port})
    env = {"REFACTORBOT_EVENT_BUS__PORT": str(bus_port)}
    session = start_service("session", tmp_path / "session", session_port, env)
    url = f"http://127.0.0.1:{session_port}"
    bus_url = f"http://127.0.0.1:{bus_port}"
    seen: list[dict] = []
    try:
        # 1. the bus is down: appends succeed, their events wait in the outbox
        sid = httpx.post(f"{url}/v1/sessions", json={}, headers=H).json()["id"]
        for i in range(5):
            r = httpx.post(
                f"{url}/v1/sessions/{sid}/messages",
                json={"messages": [{"role": "user", "content": f"m{i}"}]},
                headers=H,
            )
            assert r.status_code == 201
        # 2. the slice is killed before it could relay anything
        os.kill(session.pid, signal.SIGKILL)
        session.wait()
        # 3. the bus comes up, the slice restarts: every event arrives, once
        with serve_app(create_app(bus_slice(), bus_settings), port=bus_port):
            session = start_service("session", tmp_path / "session", session_port, env)
            wait_for(lambda: len(seen.__iadd__(drain(bus_url, "check")) or seen) >= 5)
            r = httpx.post(
                f"{url}/v1/sessions/{sid}/messages",
                json={"messages": [{"role": "user", "content": "live"}]},
                headers=H,
            )
            assert r.status_code == 201
            wait_for(lambda: len(seen.__iadd__(drain(bus_url, "check")) or seen) >= 6)
    finally:
        session.terminate()
        session.wait(10)
    assert [e["payload"]["first_seq"] for e in seen] == [1, 2, 3, 4, 5, 6]
    assert all(e["type"] == TOPIC and e["payload"]["session_id"] == sid for e in seen)
    assert len({e["id"] for e in seen}) == 6
