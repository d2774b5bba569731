"""master_core against the real fleet (OpenRouter simulator): a streamed turn in another
key's session is the same 404 as an unstreamed one, before any stream starts; bad text gets
a 4xx; and schemathesis finds no server error in the public API."""

from __future__ import annotations

import time

import httpx
import pytest

from refactorbot.testing import ADMIN_KEY, RunningFleet
from services.kit.fuzz import fuzz, fuzz_stateful

pytestmark = [pytest.mark.integration]


class _Any:
    """Equal to anything (a request id differs between two requests)."""

    def __eq__(self, other: object) -> bool:
        return True


ANY = _Any()


def two_keys(fleet: RunningFleet) -> tuple[dict[str, str], dict[str, str]]:
    with fleet.master as admin:
        made = [admin.post("/v1/keys", json={"name": f"gw-{n}"}).json()["key"] for n in "ab"]
    a, b = ({"Authorization": f"Bearer {k}"} for k in made)
    return a, b


def test_streaming_into_another_keys_session_is_404_before_the_stream(
    fleet: RunningFleet,
) -> None:
    a, b = two_keys(fleet)
    base = fleet.url("master_core")
    with httpx.Client(base_url=base, timeout=60) as c:
        turn = c.post("/v1/chat", json={"message": "mine"}, headers=a)
        assert turn.status_code == 200, turn.text
        sid = turn.json()["session_id"]
        plain = c.post("/v1/chat", json={"message": "x", "session_id": sid}, headers=b)
        assert plain.status_code == 404
        streamed = c.post(
            "/v1/chat", json={"message": "x", "session_id": sid, "stream": True}, headers=b
        )
        assert streamed.status_code == 404, streamed.text
        assert streamed.headers["content-type"].startswith("application/json")
        assert streamed.json()["error"] == {**plain.json()["error"], "request_id": ANY}
        body = {"messages": [{"role": "user", "content": "x"}], "stream": True}
        completion = c.post("/v1/chat/completions", json=body, headers={**b, "X-Session-ID": sid})
        assert completion.status_code == 404, completion.text
        unknown = c.post(
            "/v1/chat", json={"message": "x", "session_id": "nope", "stream": True}, headers=a
        )
        assert unknown.status_code == 404
        # the owner still streams it
        with c.stream(
            "POST",
            "/v1/chat",
            json={"message": "again", "session_id": sid, "stream": True},
            headers=a,
        ) as own:
            assert own.status_code == 200
            text = "".join(own.iter_text())
        assert text.startswith("event: turn.started") and "event: final" in text
        with c.stream("POST", "/v1/chat/completions", json=body, headers=a) as oa:
            chunks = "".join(oa.iter_text())
        assert oa.status_code == 200 and chunks.rstrip().endswith("data: [DONE]")


def test_lone_surrogates_through_the_fleet_are_422(fleet: RunningFleet) -> None:
    with fleet.master as c:
        for path, body in [
            ("/v1/chat", '{"message": "a\\ud800b"}'),
            ("/v1/chat", '{"message": "a\\ud800b", "stream": true}'),
            (
                "/v1/chat/completions",
                '{"messages": [{"role": "user", "content": "hi"},'
                ' {"role": "user", "content": "\\udfff"}]}',
            ),
        ]:
            r = c.post(path, content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 422 and "surrogate" in r.text, (path, r.text)


def test_schemathesis_finds_no_server_error(fleet: RunningFleet) -> None:
    """Every public operation, generated cases, with an admin key (the widest access). The
    admin pass-through to the slices is left out: it answers with the slices' own statuses,
    and each slice has its own schemathesis test."""
    started = time.monotonic()
    report = fuzz(
        fleet.url("master_core"),
        max_examples=15,
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        skip=lambda method, path: path.startswith("/v1/admin/"),
    )
    took = time.monotonic() - started
    assert report.operations >= 12 and report.cases >= report.operations * 5
    assert report.failures == [], report.failures
    print(f"schemathesis: {report.operations} operations, {report.cases} cases in {took:.1f}s")
    with fleet.master as c:  # and the admin key survived being fuzzed
        assert c.get("/v1/keys").status_code == 200


def test_schemathesis_stateful_finds_no_server_error(fleet: RunningFleet) -> None:
    """Calls chained along the API's links: a chat's session read, searched, exported and
    deleted; a new key rotated and revoked."""
    report = fuzz_stateful(
        fleet.url("master_core"),
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        max_examples=8,
        step_count=5,
    )
    print(f"schemathesis stateful: {report.cases} calls")
    assert report.cases >= 16
    assert report.failures == [], report.failures
    with fleet.master as c:
        assert c.get("/v1/keys").status_code == 200
