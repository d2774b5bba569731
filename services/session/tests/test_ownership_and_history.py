"""Sessions people can trust: tenant isolation, channel sessions, idempotent appends,
search, export and delete, retention that archives, and nothing acknowledged lost to a
SIGKILL."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
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
from services.session.slice import create_slice

ALICE = {"X-Owner": "key-alice"}
BOB = {"X-Owner": "key-bob"}


def msgs(*texts: str) -> dict:
    return {"messages": [{"role": "user", "content": t} for t in texts]}


def test_another_key_gets_404_never_the_data(session_api: httpx.Client) -> None:
    sid = session_api.post("/v1/sessions", json={"title": "alice's"}, headers=ALICE).json()["id"]
    session_api.post(f"/v1/sessions/{sid}/messages", json=msgs("my secret plan"), headers=ALICE)
    for method, path, body in [
        ("GET", f"/v1/sessions/{sid}", None),
        ("GET", f"/v1/sessions/{sid}/messages", None),
        ("GET", f"/v1/sessions/{sid}/search?q=secret", None),
        ("GET", f"/v1/sessions/{sid}/export", None),
        ("POST", f"/v1/sessions/{sid}/messages", msgs("injected")),
        ("POST", f"/v1/sessions/{sid}/trim", None),
        ("DELETE", f"/v1/sessions/{sid}", None),
    ]:
        r = session_api.request(method, path, json=body, headers=BOB)
        assert r.status_code == 404, (method, path, r.text)
        assert "secret plan" not in r.text and "alice" not in r.text
        ghost = session_api.request(method, path.replace(sid, "nope"), json=body, headers=BOB)
        assert ghost.json()["error"]["message"] == r.json()["error"]["message"].replace(
            sid, "nope"
        )  # indistinguishable from a session that does not exist
    assert session_api.get("/v1/sessions", headers=BOB).json()["count"] == 0
    mine = session_api.get("/v1/sessions", headers=ALICE).json()
    assert mine["count"] == 1 and mine["data"][0]["owner"] == "key-alice"
    data = session_api.get(f"/v1/sessions/{sid}/messages", headers=ALICE).json()["data"]
    assert [m["content"] for m in data] == ["my secret plan"]  # nothing injected


def test_channel_sessions_are_found_or_created_once(session_api: httpx.Client) -> None:
    body = {"channel": "telegram", "external_id": "chat-42", "title": "Ada"}
    first = session_api.post("/v1/sessions/resolve", json=body)
    again = session_api.post("/v1/sessions/resolve", json=body)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["external_id"] == "chat-42" and first.json()["channel"] == "telegram"
    other = session_api.post("/v1/sessions/resolve", json={**body, "channel": "discord"})
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = set(
            pool.map(
                lambda _: session_api.post(
                    "/v1/sessions/resolve", json={"channel": "whatsapp", "external_id": "+1"}
                ).json()["id"],
                range(16),
            )
        )
    assert len(ids) == 1


def test_idempotent_append_is_a_no_op_when_retried(session_api: httpx.Client) -> None:
    sid = session_api.post("/v1/sessions", json={}).json()["id"]
    key = {"Idempotency-Key": "turn-1"}
    first = session_api.post(f"/v1/sessions/{sid}/messages", json=msgs("q", "a"), headers=key)
    retry = session_api.post(f"/v1/sessions/{sid}/messages", json=msgs("q", "a"), headers=key)
    assert first.status_code == 201 and retry.status_code == 200
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert [m["id"] for m in retry.json()["data"]] == [m["id"] for m in first.json()["data"]]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda _: session_api.post(
                    f"/v1/sessions/{sid}/messages",
                    json=msgs("same"),
                    headers={"Idempotency-Key": "turn-2"},
                ),
                range(10),
            )
        )
    data = session_api.get(f"/v1/sessions/{sid}/messages").json()
    assert [m["content"] for m in data["data"]] == ["q", "a", "same"] and data["count"] == 3


def test_search_within_a_session(session_api: httpx.Client) -> None:
    sid = session_api.post("/v1/sessions", json={}).json()["id"]
    other = session_api.post("/v1/sessions", json={}).json()["id"]
    session_api.post(
        f"/v1/sessions/{sid}/messages",
        json=msgs(
            "We deploy the billing service on Fridays",
            "The café opens at nine",
            "Billing alerts go to the on-call engineer; billing is critical",
        ),
    )
    session_api.post(f"/v1/sessions/{other}/messages", json=msgs("billing elsewhere"))
    hits = session_api.get(f"/v1/sessions/{sid}/search", params={"q": "billing"}).json()["data"]
    assert len(hits) == 2  # only this session's
    assert "billing is critical" in hits[0]["message"]["content"]  # more mentions rank first
    assert "[" in hits[0]["snippet"] and hits[0]["score"] >= hits[1]["score"]
    accents = session_api.get(f"/v1/sessions/{sid}/search", params={"q": "cafe"}).json()
    assert len(accents["data"]) == 1
    # operators are words, not syntax
    odd = session_api.get(f"/v1/sessions/{sid}/search", params={"q": 'billing" OR NEAR('})
    assert odd.status_code == 200
    assert session_api.get(f"/v1/sessions/{sid}/search", params={"q": "!!"}).status_code == 400


def test_export_and_delete(session_api: httpx.Client) -> None:
    sid = session_api.post("/v1/sessions", json={"title": "t"}, headers=ALICE).json()["id"]
    session_api.post(
        f"/v1/sessions/{sid}/messages",
        headers=ALICE,
        json={
            "messages": [
                {"role": "user", "content": "read it"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "read_file"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "contents"},
                {"role": "assistant", "content": "done"},
            ]
        },
    )
    r = session_api.get(f"/v1/sessions/{sid}/export", headers=ALICE)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert lines[0]["type"] == "session" and lines[0]["id"] == sid
    assert [x["role"] for x in lines[1:]] == ["user", "assistant", "tool", "assistant"]
    assert lines[2]["tool_calls"][0]["id"] == "c1" and lines[3]["tool_call_id"] == "c1"
    assert session_api.delete(f"/v1/sessions/{sid}", headers=ALICE).status_code == 204
    assert session_api.get(f"/v1/sessions/{sid}", headers=ALICE).status_code == 404
    assert (
        session_api.get(f"/v1/sessions/{sid}/search", params={"q": "contents"}).status_code == 404
    )
    assert session_api.get("/status").json()["details"]["messages"] == 0


@pytest.mark.integration
def test_retention_archives_and_never_drops(tmp_path: Path) -> None:
    settings = settings_for_tests(
        tmp_path, session={"retain_max_messages": 4, "retain_max_tokens": 0}
    )
    with (
        serve_app(create_app(create_slice(), settings)) as url,
        httpx.Client(base_url=url, headers={"X-Internal-Token": TEST_TOKEN}) as c,
    ):
        sid = c.post("/v1/sessions", json={}).json()["id"]
        for i in range(5):
            c.post(
                f"/v1/sessions/{sid}/messages",
                json={
                    "messages": [
                        {"role": "user", "content": f"q{i}"},
                        {"role": "assistant", "content": f"a{i}"},
                    ]
                },
            )
        live = c.get(f"/v1/sessions/{sid}/messages").json()["data"]
        assert [m["content"] for m in live] == ["q3", "a3", "q4", "a4"]
        everything = c.get(f"/v1/sessions/{sid}/messages", params={"include_archived": True})
        assert len(everything.json()["data"]) == 10
        assert sum(m["archived"] for m in everything.json()["data"]) == 6
        session = c.get(f"/v1/sessions/{sid}").json()
        assert session["archived_count"] == 6 and session["message_count"] == 10
        exported = c.get(f"/v1/sessions/{sid}/export").text.splitlines()
        assert len(exported) == 11  # archived messages are still exported
        hits = c.get(f"/v1/sessions/{sid}/search", params={"q": "q0"}).json()["data"]
        assert hits and hits[0]["message"]["archived"] is True


@pytest.mark.integration
def test_trim_by_tokens_keeps_tool_calls_with_their_results(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path, session={"retain_max_tokens": 40})
    with (
        serve_app(create_app(create_slice(), settings)) as url,
        httpx.Client(base_url=url, headers={"X-Internal-Token": TEST_TOKEN}) as c,
    ):
        sid = c.post("/v1/sessions", json={}).json()["id"]
        c.post(
            f"/v1/sessions/{sid}/messages",
            json={
                "messages": [
                    {"role": "user", "content": "x" * 200},
                    {"role": "assistant", "content": "y" * 200},
                    {"role": "user", "content": "list"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [{"id": "c", "type": "function", "function": {}}],
                    },
                    {"role": "tool", "tool_call_id": "c", "content": "z" * 60},
                    {"role": "assistant", "content": "ok"},
                ]
            },
        )
        trimmed = c.post(f"/v1/sessions/{sid}/trim").json()
        live = c.get(f"/v1/sessions/{sid}/messages").json()["data"]
        assert trimmed["archived"] >= 2 and live[0]["role"] == "user"
        assert {m["role"] for m in live} >= {"assistant", "tool"}


def _start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    return start_service("session", data_dir, port)


@pytest.mark.integration
@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_append(tmp_path: Path) -> None:
    """Appenders keep writing (each append with an idempotency key) while the slice is
    killed with SIGKILL three times; unacknowledged appends are retried with the same key.
    Every acknowledged append is there, in order, exactly once."""
    port = free_port()
    h = {"X-Internal-Token": TEST_TOKEN}
    proc = _start(tmp_path, port)
    url = f"http://127.0.0.1:{port}"
    sid = httpx.post(f"{url}/v1/sessions", json={}, headers=h).json()["id"]
    acked: set[int] = set()
    pending = list(range(300))

    def append(n: int) -> bool:
        try:
            r = httpx.post(
                f"{url}/v1/sessions/{sid}/messages",
                json=msgs(f"m{n}"),
                headers={**h, "Idempotency-Key": f"k{n}"},
                timeout=5,
            )
            return r.status_code in (200, 201)
        except httpx.HTTPError:
            return False

    kills = 0
    while pending:
        batch, pending = pending[:60], pending[60:]
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            futures = {pool.submit(append, n): n for n in batch}
            if kills < 3:
                time.sleep(0.05)
                os.kill(proc.pid, signal.SIGKILL)  # mid-batch
                proc.wait()
                kills += 1
            for f, n in futures.items():
                if f.result():
                    acked.add(n)
                else:
                    pending.append(n)  # not acknowledged: retried with the same key
        if proc.poll() is not None:
            proc = _start(tmp_path, port)
    try:
        data = httpx.get(
            f"{url}/v1/sessions/{sid}/messages", params={"limit": 1000}, headers=h
        ).json()["data"]
    finally:
        proc.terminate()
        proc.wait(10)
    contents = [m["content"] for m in data]
    assert kills == 3 and acked == set(range(300))
    assert sorted(contents) == sorted(f"m{n}" for n in range(300))  # each exactly once
    assert [m["seq"] for m in data] == list(range(1, 301))  # gapless
