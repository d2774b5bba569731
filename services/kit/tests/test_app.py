"""create_app: standard endpoints, request ids, errors, limits, auth, metrics."""

from __future__ import annotations

import json

import httpx

from services.kit.testing import TEST_TOKEN

AUTH = {"X-Internal-Token": TEST_TOKEN}


def test_standard_endpoints(demo: str) -> None:
    assert httpx.get(f"{demo}/health").json() == {"status": "ok", "service": "tools"}
    ready = httpx.get(f"{demo}/ready")
    assert ready.status_code == 200 and ready.json()["checks"]["database"]["ok"] is True
    status = httpx.get(f"{demo}/status").json()
    assert status["name"] == "tools" and status["healthy"] is True and status["pid"] > 0
    caps = httpx.get(f"{demo}/capabilities").json()
    assert "tools.call" in caps["capabilities"] and caps["endpoints"]
    assert "POST /v1/demo/echo" in caps["endpoints"]


def test_metrics_use_route_templates_and_count_requests(demo: str) -> None:
    httpx.post(f"{demo}/v1/demo/echo", json={"text": "hi"}, headers=AUTH)
    httpx.get(f"{demo}/v1/nothing-here/123")
    text = httpx.get(f"{demo}/metrics").text
    assert 'http_requests_total{method="POST",route="/v1/demo/echo",status="200"} 1.0' in text
    assert 'route="<unmatched>",status="404"' in text
    assert "http_request_duration_seconds_bucket" in text
    assert "http_requests_in_flight" in text


def test_request_id_is_echoed_or_made(demo: str) -> None:
    given = httpx.get(f"{demo}/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = httpx.get(f"{demo}/health")
    assert len(made.headers["x-request-id"]) == 32


def test_request_id_and_deadline_flow_to_downstream_calls(demo: str) -> None:
    r = httpx.get(
        f"{demo}/v1/demo/relay",
        headers={**AUTH, "X-Request-ID": "trace-me", "X-Deadline-Ms": "5000"},
    )
    body = r.json()
    assert body["request_id"] == "trace-me"
    assert body["caller"] == "tools"
    assert 0 < int(body["deadline_ms"]) <= 5000  # what was left, not the full default
    assert 0 < body["remaining_s"] <= 5.0


def test_internal_routes_need_the_token(demo: str) -> None:
    r = httpx.post(f"{demo}/v1/demo/echo", json={"text": "hi"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    wrong = httpx.post(
        f"{demo}/v1/demo/echo", json={"text": "hi"}, headers={"X-Internal-Token": "nope"}
    )
    assert wrong.status_code == 401


def test_validation_error_names_the_field(demo: str) -> None:
    r = httpx.post(f"{demo}/v1/demo/echo", json={"text": ""}, headers=AUTH)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "validation_error"
    assert err["details"][0]["field"] == "body.text"
    assert "body.text" in err["message"]
    bad_json = httpx.post(
        f"{demo}/v1/demo/echo",
        content=b"{not json",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert bad_json.status_code == 422


def test_unexpected_error_is_an_envelope_without_internals(demo: str) -> None:
    r = httpx.get(f"{demo}/v1/demo/boom", headers={**AUTH, "X-Request-ID": "boom-1"})
    assert r.status_code == 500
    body = r.json()
    assert body["error"]["code"] == "internal_error"
    assert body["error"]["request_id"] == "boom-1"
    assert "secret internals" not in r.text and "Traceback" not in r.text


def test_unknown_route_and_method(demo: str) -> None:
    r = httpx.get(f"{demo}/v1/unknown")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = httpx.delete(f"{demo}/health")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_body_over_the_quota_is_413(demo: str) -> None:
    big = json.dumps({"text": "x" * 2_000_000})  # tools' default quota is 1 MiB
    r = httpx.post(
        f"{demo}/v1/demo/echo", content=big, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"

    def chunks():  # no Content-Length: counted while read
        for _ in range(40):
            yield b"x" * 65536

    r = httpx.post(f"{demo}/v1/demo/echo", content=chunks(), headers=AUTH)
    assert r.status_code == 413


def test_improvement_plan_reflects_errors_and_feedback(demo: str) -> None:
    for _ in range(3):
        httpx.get(f"{demo}/v1/demo/boom", headers=AUTH)
    fb = httpx.post(
        f"{demo}/improvement/feedback",
        headers=AUTH,
        json={"source": "test", "kind": "quality", "message": "answers too long"},
    )
    assert fb.status_code == 202
    plan = httpx.get(f"{demo}/improvement/plan", headers=AUTH).json()
    targets = {a["target"]: a for a in plan["actions"]}
    assert targets["GET /v1/demo/boom"]["priority"] == "high"
    assert any(a["problem"] == "answers too long" for a in plan["actions"])
    assert httpx.get(f"{demo}/improvement/plan").status_code == 401
