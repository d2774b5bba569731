"""Sessions and history over HTTP, against a real SQLite file."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import httpx
import pytest

from services.kit.app import create_app
from services.kit.testing import TEST_TOKEN, serve_app, settings_for_tests
from services.session.slice import create_slice
from services.session.tests.conftest import make_session


def test_create_get_and_list(session_api: httpx.Client) -> None:
    sid = make_session(session_api, title="Plans", metadata={"k": "v"})
    got = session_api.get(f"/v1/sessions/{sid}").json()
    assert got["title"] == "Plans" and got["metadata"] == {"k": "v"} and got["message_count"] == 0
    chosen = make_session(session_api, id="telegram:42")
    listed = session_api.get("/v1/sessions").json()
    assert listed["count"] == 2
    assert listed["data"][0]["id"] == chosen  # most recently active first


def test_chosen_id_twice_is_409(session_api: httpx.Client) -> None:
    make_session(session_api, id="dup")
    r = session_api.post("/v1/sessions", json={"id": "dup"})
    assert r.status_code == 409 and "already exists" in r.json()["error"]["message"]


def test_append_and_read_every_role_in_order(session_api: httpx.Client) -> None:
    sid = make_session(session_api)
    msgs = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
        {"role": "assistant", "content": "It rains in Oslo."},
    ]
    r = session_api.post(f"/v1/sessions/{sid}/messages", json={"messages": msgs})
    assert r.status_code == 201
    assert [m["seq"] for m in r.json()["data"]] == [1, 2, 3, 4, 5]
    history = session_api.get(f"/v1/sessions/{sid}/messages").json()
    assert history["count"] == 5
    assert [m["role"] for m in history["data"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert history["data"][2]["tool_calls"][0]["function"]["name"] == "weather"
    assert history["data"][3]["tool_call_id"] == "call_1"
    tail = session_api.get(f"/v1/sessions/{sid}/messages", params={"tail": 2}).json()
    assert [m["seq"] for m in tail["data"]] == [4, 5]
    page = session_api.get(
        f"/v1/sessions/{sid}/messages", params={"after_seq": 1, "limit": 2}
    ).json()
    assert [m["seq"] for m in page["data"]] == [2, 3]
    assert session_api.get(f"/v1/sessions/{sid}").json()["message_count"] == 5


def test_bad_input_is_4xx_naming_the_problem(session_api: httpx.Client) -> None:
    sid = make_session(session_api)
    cases = [
        ({"messages": []}, "body.messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "body.messages.0.role"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
        ({"messages": [{"role": "user"}]}, "content is required"),
        ({"messages": [{"role": "user", "content": "x", "tool_call_id": "c"}]}, "tool_call_id"),
    ]
    for body, expected in cases:
        r = session_api.post(f"/v1/sessions/{sid}/messages", json=body)
        assert r.status_code == 422, body
        assert expected in r.text, (body, r.text)
    assert session_api.post("/v1/sessions", json={"id": "has space"}).status_code == 422
    assert session_api.get("/v1/sessions/..%2F..%2Fetc").status_code in (404, 422)
    # nothing of the above was stored
    assert session_api.get(f"/v1/sessions/{sid}").json()["message_count"] == 0


def test_unknown_session_is_404(session_api: httpx.Client) -> None:
    r = session_api.get("/v1/sessions/nope/messages")
    assert r.status_code == 404 and r.json()["error"]["message"] == "session 'nope' not found"
    r = session_api.post(
        "/v1/sessions/nope/messages", json={"messages": [{"role": "user", "content": "hi"}]}
    )
    assert r.status_code == 404


@pytest.mark.integration
def test_oversized_message_is_413(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path, session={"max_message_chars": 10})
    with serve_app(create_app(create_slice(), settings)) as url:
        h = {"X-Internal-Token": TEST_TOKEN}
        sid = httpx.post(f"{url}/v1/sessions", json={}, headers=h).json()["id"]
        r = httpx.post(
            f"{url}/v1/sessions/{sid}/messages",
            headers=h,
            json={"messages": [{"role": "user", "content": "x" * 11}]},
        )
        assert r.status_code == 413 and "longer than 10" in r.json()["error"]["message"]


def test_concurrent_appends_keep_a_gapless_order(session_api: httpx.Client) -> None:
    sid = make_session(session_api)
    url = str(session_api.base_url)

    def append(i: int) -> int:
        r = httpx.post(
            f"{url}/v1/sessions/{sid}/messages",
            headers={"X-Internal-Token": TEST_TOKEN},
            json={
                "messages": [
                    {"role": "user", "content": f"u{i}"},
                    {"role": "assistant", "content": f"a{i}"},
                ]
            },
        )
        return r.status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(append, range(40)))
    assert codes == [201] * 40
    history = session_api.get(f"/v1/sessions/{sid}/messages", params={"limit": 1000}).json()
    assert [m["seq"] for m in history["data"]] == list(range(1, 81))
    # each append stayed together: a user message is always followed by its own reply
    for user, reply in zip(history["data"][::2], history["data"][1::2], strict=True):
        assert reply["content"] == "a" + user["content"][1:]


@pytest.mark.integration
def test_history_survives_a_restart(tmp_path: Path) -> None:
    settings = settings_for_tests(tmp_path)
    h = {"X-Internal-Token": TEST_TOKEN}
    with serve_app(create_app(create_slice(), settings)) as url:
        sid = httpx.post(f"{url}/v1/sessions", json={}, headers=h).json()["id"]
        httpx.post(
            f"{url}/v1/sessions/{sid}/messages",
            headers=h,
            json={"messages": [{"role": "user", "content": "remember me"}]},
        )
    with serve_app(create_app(create_slice(), settings)) as url:
        data = httpx.get(f"{url}/v1/sessions/{sid}/messages", headers=h).json()["data"]
        assert [m["content"] for m in data] == ["remember me"]
        status = httpx.get(f"{url}/status").json()
        assert status["details"] == {"sessions": 1, "messages": 1}
