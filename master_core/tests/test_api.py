"""master_core's public API served on a real port: bad input is a 4xx naming what is wrong,
key management over HTTP, and what the fleet status shows to whom. No downstream slices:
all of this is answered by master_core itself."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from master_core.slice import create_slice
from services.kit.app import create_app
from services.kit.testing import serve_app, settings_for_tests

ADMIN = "rb_api_test_admin_key_0123456789abcdef012"


@contextlib.contextmanager
def master_app(tmp_path: Path) -> Iterator[str]:
    cfg = settings_for_tests(tmp_path, master_core={"admin_api_key": ADMIN}, log_level="WARNING")
    with serve_app(create_app(create_slice(), cfg)) as url:
        yield url


def client(url: str, key: str = ADMIN) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with master_app(tmp_path_factory.mktemp("master")) as base:
        yield base


def error_of(resp: httpx.Response, status: int) -> str:
    assert resp.status_code == status, resp.text
    message: str = resp.json()["error"]["message"]
    return message


def lone(template: str) -> str:
    """JSON text with ``LONE`` replaced by a lone surrogate, as JSON escapes it."""
    return template.replace("LONE", '"\\ud800"')


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/chat", lone('{"message": LONE}'), "message"),
        ("/v1/chat", lone('{"message": "hi", "session_id": LONE}'), "session_id"),
        (
            "/v1/chat/completions",
            lone('{"messages": [{"role": "user", "content": LONE}]}'),
            "messages.0.content",
        ),
        (
            "/v1/chat/completions",
            lone(
                '{"messages": [{"role": "assistant", "content": LONE},'
                ' {"role": "user", "content": "x"}]}'
            ),
            "messages.0.content",
        ),
        (
            "/v1/chat/completions",
            lone('{"messages": [{"role": "user", "content": [{"type": "text", "text": LONE}]}]}'),
            "messages.0.content.0.text",
        ),
        (
            "/v1/chat/completions",
            lone('{"messages": [{"role": "user", "content": "x"}], LONE: 1}'),
            "'\\ud800'",
        ),
        ("/v1/keys", lone('{"name": LONE}'), "name"),
    ],
)
def test_lone_surrogates_are_422_naming_the_field(
    url: str, path: str, body: str, field: str
) -> None:
    with client(url) as c:
        resp = c.post(path, content=body, headers={"Content-Type": "application/json"})
    message = error_of(resp, 422)
    assert f"{field}: text contains a lone UTF-16 surrogate" in message


def test_a_history_message_over_the_limit_is_422_naming_it(url: str) -> None:
    long = "x" * 200_001  # under the body cap of 262144 bytes
    body = {"messages": [{"role": "assistant", "content": long}, {"role": "user", "content": "hi"}]}
    with client(url) as c:
        message = error_of(c.post("/v1/chat/completions", json=body), 422)
        assert "messages.0" in message and "longer than 200000 characters" in message
        parts = [{"type": "text", "text": "y" * 100_001}] * 2
        body = {"messages": [{"role": "user", "content": parts}]}
        assert "messages.0" in error_of(c.post("/v1/chat/completions", json=body), 422)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat", {"message": "hi", "stream": "yes"}),
        ("/v1/chat", {"message": "hi", "stream": 1}),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "x"}], "stream": "true"},
        ),
        ("/v1/keys", {"name": "k", "admin": "yes"}),
        ("/v1/keys", {"name": "k", "expires_in_days": "3"}),
        ("/v1/keys", {"name": "k", "expires_in_days": 2.5}),
    ],
)
def test_booleans_and_numbers_are_strict(url: str, path: str, body: dict[str, object]) -> None:
    with client(url) as c:
        resp = c.post(path, json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["details"][0]["field"].startswith("body.")


@pytest.mark.parametrize("value", ["0", "-5", "abc", "1.5", "", "99999999999999999999"])
def test_bad_deadline_header_is_400_naming_it(url: str, value: str) -> None:
    with client(url) as c:
        resp = c.post("/v1/chat", json={"message": "hi"}, headers={"X-Deadline-Ms": value})
    assert "X-Deadline-Ms" in error_of(resp, 400)
    assert resp.headers["X-Request-ID"]


@pytest.mark.parametrize("name", ["a\u0000b", "   ", "line\nbreak", "x" * 101, "\u202e"])
def test_bad_key_names_are_422(url: str, name: str) -> None:
    with client(url) as c:
        resp = c.post("/v1/keys", json={"name": name})
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["details"][0]["field"] == "body.name"


def test_keys_list_revoke_rotate_and_expire(url: str) -> None:
    with client(url) as admin:
        made = admin.post("/v1/keys", json={"name": "  worker ", "expires_in_days": 30})
        assert made.status_code == 201, made.text
        key, key_id = made.json()["key"], made.json()["id"]
        assert made.json()["name"] == "worker" and made.json()["expires_at"]
        listed = admin.get("/v1/keys").json()
        row = next(k for k in listed["data"] if k["id"] == key_id)
        assert row["state"] == "active" and row["expires_at"] and not row["admin"]
        assert "key" not in row and "key_hash" not in row
        assert not any(key in str(v) or str(v) == key for k in listed["data"] for v in k.values())
        with client(url, key) as worker:
            assert worker.get("/v1/fleet/status").status_code == 200
            assert error_of(worker.get("/v1/keys"), 403)
            assert error_of(worker.delete(f"/v1/keys/{key_id}"), 403)
            rotated = admin.post(f"/v1/keys/{key_id}/rotate")
            assert rotated.status_code == 200, rotated.text
            new = rotated.json()["key"]
            assert rotated.json()["id"] == key_id and new != key
            assert "invalid" in error_of(worker.get("/v1/fleet/status"), 401)  # old secret
        with client(url, new) as worker:
            assert worker.get("/v1/fleet/status").status_code == 200
            assert admin.delete(f"/v1/keys/{key_id}").json()["state"] == "revoked"
            assert "revoked" in error_of(worker.get("/v1/fleet/status"), 401)
        assert error_of(admin.delete("/v1/keys/0123456789abcdef"), 404)
        assert error_of(admin.post("/v1/keys/0123456789abcdef/rotate"), 404)
        assert error_of(admin.post(f"/v1/keys/{key_id}/rotate"), 409)
        past = admin.post("/v1/keys", json={"name": "p", "expires_at": "2001-01-01T00:00:00Z"})
        assert "expires_at" in error_of(past, 400)
        both = {"name": "b", "expires_in_days": 1, "expires_at": "2999-01-01T00:00:00Z"}
        assert error_of(admin.post("/v1/keys", json=both), 422)
        own = next(k for k in admin.get("/v1/keys").json()["data"] if k["admin"])
        assert "config" in error_of(admin.delete(f"/v1/keys/{own['id']}"), 409)


def test_fleet_status_details_are_for_admins_only(url: str) -> None:
    with client(url) as admin:
        key = admin.post("/v1/keys", json={"name": "plain"}).json()["key"]
        detailed = admin.get("/v1/fleet/status").json()
        assert detailed["services"]["master_core"]["status"]
        assert detailed["services"]["master_core"]["url"]
    with client(url, key) as plain:
        summary = plain.get("/v1/fleet/status").json()
    assert set(summary) == {"ok", "services"}
    assert summary["services"]["master_core"] == {"ok": True}
    assert all(set(s) == {"ok"} for s in summary["services"].values())
    assert set(summary["services"]) == set(detailed["services"])


@pytest.mark.integration
def test_a_revoke_takes_effect_at_once_on_another_replica(tmp_path: Path) -> None:
    """Two master_core apps on one database: a key revoked through one is refused by the
    other on the very next request (no cache can keep it alive)."""
    with master_app(tmp_path) as one, master_app(tmp_path) as two:
        with client(one) as admin_one:
            made = admin_one.post("/v1/keys", json={"name": "shared"}).json()
        with client(two, made["key"]) as on_two:
            for _ in range(3):  # warm: used, and recognised
                assert on_two.get("/v1/fleet/status").status_code == 200
            with client(one) as admin_one:
                assert admin_one.delete(f"/v1/keys/{made['id']}").status_code == 200
            assert "revoked" in error_of(on_two.get("/v1/fleet/status"), 401)
            with client(two) as admin_two:
                rotated = admin_two.post("/v1/keys", json={"name": "r"}).json()
                new = admin_two.post(f"/v1/keys/{rotated['id']}/rotate").json()["key"]
            with client(one, rotated["key"]) as old, client(one, new) as fresh:
                assert error_of(old.get("/v1/fleet/status"), 401)
                assert fresh.get("/v1/fleet/status").status_code == 200
