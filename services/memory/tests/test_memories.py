"""Memories through HTTP: CRUD with validation, scoped search with scores, isolation
between keys, merging near-duplicates, surviving a restart."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from services.kit.app import create_app
from services.kit.testing import (
    TEST_TOKEN,
    free_port,
    serve_app,
    settings_for_tests,
    start_service,
)
from services.memory.slice import create_slice

ALICE = {"X-Owner": "key-alice"}
BOB = {"X-Owner": "key-bob"}


def remember(c: httpx.Client, text: str, headers: dict | None = None, **fields: object) -> dict:
    body = {"scope": "user", "subject": "alice", "text": text, **fields}
    r = c.post("/v1/memories", json=body, headers=headers or {})
    assert r.status_code in (200, 201), r.text
    return r.json()


def test_crud_and_validation(memory_api: httpx.Client) -> None:
    made = remember(memory_api, "Alice prefers dark mode", kind="preference", tags=["UI"])
    assert len(made["id"]) == 32 and made["tags"] == ["ui"] and made["mentions"] == 1
    got = memory_api.get(f"/v1/memories/{made['id']}").json()
    assert got == made
    changed = memory_api.patch(f"/v1/memories/{made['id']}", json={"importance": 0.9}).json()
    assert changed["importance"] == 0.9 and changed["id"] == made["id"]
    listed = memory_api.get("/v1/memories", params={"tag": "ui"}).json()
    assert listed["count"] == 1
    assert memory_api.delete(f"/v1/memories/{made['id']}").status_code == 204
    assert memory_api.get(f"/v1/memories/{made['id']}").status_code == 404
    for bad, field in [
        ({"scope": "user", "text": "x"}, "subject"),
        ({"scope": "global", "subject": "x", "text": "x"}, "global"),
        ({"scope": "team", "subject": "x", "text": "x"}, "scope"),
        ({"scope": "user", "subject": "a", "text": ""}, "text"),
        ({"scope": "user", "subject": "a", "text": "x", "importance": 2}, "importance"),
        ({"scope": "user", "subject": "a", "text": "x", "tags": ["no spaces"]}, "tag"),
    ]:
        r = memory_api.post("/v1/memories", json=bad)
        assert r.status_code == 422 and field in r.text, (bad, r.text)
    huge = memory_api.post(
        "/v1/memories", json={"scope": "user", "subject": "a", "text": "x" * 5000}
    )
    assert huge.status_code == 413


def test_search_is_scoped_and_scored(memory_api: httpx.Client) -> None:
    remember(memory_api, "Alice's favourite editor is Neovim with the gruvbox theme")
    remember(memory_api, "Alice deploys the billing service on Fridays", importance=0.9)
    remember(memory_api, "Bob uses Emacs for everything", subject="bob")
    remember(memory_api, "The team decided to move the standup to 9:30", scope="session",
             subject="s1")  # fmt: skip
    memory_api.post(
        "/v1/memories", json={"scope": "global", "text": "The office editor policy: any editor"}
    )
    hits = memory_api.get(
        "/v1/memories/search", params={"q": "which editor does she use?", "user": "alice"}
    ).json()["data"]
    texts = [h["memory"]["text"] for h in hits]
    assert any("Neovim" in t for t in texts[:2])
    assert not any("Emacs" in t for t in texts)  # Bob's are out of scope
    assert any("office editor policy" in t for t in texts)  # global included
    assert all(h["score"] > 0 for h in hits)
    assert hits == sorted(hits, key=lambda h: h["score"], reverse=True)
    session_hits = memory_api.get(
        "/v1/memories/search", params={"q": "standup time", "session_id": "s1"}
    ).json()["data"]
    assert session_hits[0]["memory"]["text"].startswith("The team decided")
    stemmed = memory_api.get(
        "/v1/memories/search", params={"q": "deploying", "user": "alice"}
    ).json()["data"]
    assert stemmed and "deploys" in stemmed[0]["memory"]["text"]
    # FTS syntax in a query is just words
    odd = memory_api.get("/v1/memories/search", params={"q": 'editor" NEAR( OR *'})
    assert odd.status_code == 200
    assert memory_api.get("/v1/memories/search", params={"q": "?!"}).status_code == 400


def test_keys_do_not_see_each_others_memories(memory_api: httpx.Client) -> None:
    mine = remember(memory_api, "Alice's bank is Example Bank", headers=ALICE)
    remember(memory_api, "Bob's bank is Other Bank", headers=BOB, subject="bob")
    for r in (
        memory_api.get(f"/v1/memories/{mine['id']}", headers=BOB),
        memory_api.patch(f"/v1/memories/{mine['id']}", json={"importance": 1}, headers=BOB),
        memory_api.delete(f"/v1/memories/{mine['id']}", headers=BOB),
    ):
        assert r.status_code == 404 and "Example" not in r.text
    hits = memory_api.get("/v1/memories/search", params={"q": "bank"}, headers=BOB).json()
    assert [h["memory"]["text"] for h in hits["data"]] == ["Bob's bank is Other Bank"]
    assert memory_api.get("/v1/memories", headers=BOB).json()["count"] == 1


def test_near_duplicates_merge(memory_api: httpx.Client) -> None:
    first = remember(memory_api, "Alice prefers tea over coffee", tags=["drinks"])
    again = memory_api.post(
        "/v1/memories?dedupe=true",
        json={
            "scope": "user",
            "subject": "alice",
            "text": "Alice prefers tea over coffee.",
            "importance": 0.8,
            "tags": ["food"],
        },
    )
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    merged = again.json()
    assert merged["mentions"] == 2 and merged["importance"] == 0.8
    assert merged["tags"] == ["drinks", "food"]
    other = memory_api.post(
        "/v1/memories?dedupe=true",
        json={"scope": "user", "subject": "alice", "text": "Alice drinks coffee at work"},
    )
    assert other.status_code == 201


@pytest.mark.integration
def test_memories_survive_a_restart(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path, memory={"consolidate_every_s": 0})
    h = {"X-Internal-Token": TEST_TOKEN}
    with serve_app(create_app(create_slice(), settings)) as url:
        made = httpx.post(
            f"{url}/v1/memories",
            json={"scope": "global", "text": "acknowledged means on disk"},
            headers=h,
        ).json()
    with serve_app(create_app(create_slice(), settings)) as url:
        got = httpx.get(f"{url}/v1/memories/{made['id']}", headers=h).json()
        hits = httpx.get(f"{url}/v1/memories/search", params={"q": "disk"}, headers=h).json()
    assert got["text"] == "acknowledged means on disk" and hits["data"]


@pytest.mark.integration
@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_memory(tmp_path: Path) -> None:
    """Writers store memories while the slice is SIGKILLed; every acknowledged one is
    there afterwards, and searchable."""
    port = free_port()
    h = {"X-Internal-Token": TEST_TOKEN}
    env = {"REFACTORBOT_MEMORY__CONSOLIDATE_EVERY_S": "0"}
    proc = start_service("memory", tmp_path, port, env)
    url = f"http://127.0.0.1:{port}"
    acked: dict[str, str] = {}

    def store(n: int) -> None:
        try:
            r = httpx.post(
                f"{url}/v1/memories",
                json={"scope": "global", "text": f"fact number{n} zebra"},
                headers=h,
                timeout=5,
            )
        except httpx.HTTPError:
            return
        if r.status_code == 201:
            acked[r.json()["id"]] = f"fact number{n} zebra"

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(store, n) for n in range(200)]
        deadline = time.monotonic() + 15  # kill mid-stream, once some writes are acknowledged
        while len(acked) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        for f in futures:
            f.result()
    proc = start_service("memory", tmp_path, port, env)
    try:
        listed = httpx.get(f"{url}/v1/memories", params={"limit": 1000}, headers=h).json()
        hits = httpx.get(
            f"{url}/v1/memories/search", params={"q": "zebra", "limit": 50}, headers=h
        ).json()
        check = httpx.get(f"{url}/status").json()["details"]
    finally:
        proc.terminate()
        proc.wait(10)
    stored = {m["id"]: m["text"] for m in listed["data"]}
    assert acked and all(stored.get(i) == t for i, t in acked.items())
    assert hits["data"] and check["memories"] == len(stored)
