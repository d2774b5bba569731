"""The bus as a real process: SIGKILLed while publishers send, flooded while a consumer
is stalled. 0 acknowledged events lost, duplicates only where delivery is at-least-once,
memory flat, database intact."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from services.kit.testing import TEST_TOKEN, free_port, start_service

H = {"X-Internal-Token": TEST_TOKEN}
pytestmark = pytest.mark.slow


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@pytest.mark.integration
def test_sigkill_loses_no_acknowledged_event(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_service("event_bus", tmp_path, port)
    acked: set[str] = set()
    pending = [f"ev-{n}" for n in range(1200)]

    def send(batch: list[str]) -> list[str]:
        try:
            r = httpx.post(
                f"{url}/v1/topics/crash/events",
                json={"events": [{"id": i, "type": "t", "payload": {"i": i}} for i in batch]},
                headers=H,
                timeout=5,
            )
        except httpx.HTTPError:
            return []
        return batch if r.status_code == 201 else []

    kills = 0
    while pending:
        work, pending = pending[:300], pending[300:]
        batches = [work[i : i + 10] for i in range(0, len(work), 10)]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(send, b) for b in batches]
            if kills < 3:
                time.sleep(0.15)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                kills += 1
            for f, b in zip(futures, batches, strict=True):
                ok = f.result()
                acked.update(ok)
                if not ok:
                    pending.extend(b)  # not acknowledged: sent again, same ids
        if proc.poll() is not None:
            proc = start_service("event_bus", tmp_path, port)
    try:
        seen: list[str] = []
        while True:
            r = httpx.post(
                f"{url}/v1/topics/crash/groups/check/pull", json={"max": 500}, headers=H
            ).json()["data"]
            if not r:
                break
            seen += [d["id"] for d in r]
            httpx.post(
                f"{url}/v1/topics/crash/groups/check/ack",
                json={"seqs": [d["seq"] for d in r]},
                headers=H,
            )
    finally:
        proc.terminate()
        proc.wait(10)
    assert kills == 3
    assert acked == {f"ev-{n}" for n in range(1200)}
    assert set(seen) >= acked  # 0 acknowledged events lost
    assert len(seen) == len(set(seen))  # ids make publishing idempotent: no duplicates
    with sqlite3.connect(tmp_path / "slice_event_bus.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.integration
def test_backpressure_with_a_stalled_consumer(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_service(
        "event_bus", tmp_path, port, {"REFACTORBOT_EVENT_BUS__SWEEP_EVERY_S": "0.2"}
    )
    try:
        with httpx.Client(base_url=url, headers=H, timeout=10) as c:
            c.put("/v1/topics/stall", json={"max_messages": 200})
            c.post("/v1/topics/stall/groups/slow/pull", json={"max": 1})  # the group exists
            body = {"events": [{"type": "t", "payload": "x" * 1000} for _ in range(10)]}
            codes: dict[int, int] = {}
            before = _rss_kib(proc.pid)
            started = time.perf_counter()
            for _ in range(400):  # 4,000 events at a topic that holds 200
                code = c.post("/v1/topics/stall/events", json=body).status_code
                codes[code] = codes.get(code, 0) + 1
            per_call = (time.perf_counter() - started) / 400
            grown = _rss_kib(proc.pid) - before
            topic = c.get("/v1/topics/stall").json()
            assert codes[201] == 20 and codes[503] == 380
            assert per_call < 0.05 and grown < 20_000  # fast refusals, memory flat
            assert topic["depth"] == 200 and topic["published"] == 200
            # the consumer resumes: the topic drains
            while got := c.post("/v1/topics/stall/groups/slow/pull", json={"max": 100}).json()[
                "data"
            ]:
                c.post("/v1/topics/stall/groups/slow/ack", json={"seqs": [d["seq"] for d in got]})
            deadline = time.monotonic() + 5
            while c.get("/v1/topics/stall").json()["depth"]:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert c.post("/v1/topics/stall/events", json=body).status_code == 201
    finally:
        proc.terminate()
        proc.wait(10)
