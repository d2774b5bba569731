"""Two replicas of the tools slice on one database: a switch flipped through one is obeyed
by the other, at once (re-check on every request) or within the re-check interval."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from services.kit.app import create_app
from services.kit.testing import TEST_TOKEN, serve_app, settings_for_tests
from services.tools.slice import create_slice

pytestmark = pytest.mark.integration  # every test here starts servers or processes

AUTH = {"X-Internal-Token": TEST_TOKEN}


def read_file(url: str) -> int:
    r = httpx.post(
        f"{url}/v1/tools/read_file/call", json={"arguments": {"path": "a.txt"}}, headers=AUTH
    )
    return r.status_code


def offered(url: str) -> set[str]:
    tools = httpx.get(f"{url}/v1/tools/openai", headers=AUTH).json()["tools"]
    return {t["function"]["name"] for t in tools}


@pytest.mark.integration
@pytest.mark.parametrize("recheck_s", [0.0, 0.3])
def test_a_switch_flipped_on_one_replica_holds_on_the_other(
    tmp_path: Path, recheck_s: float
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("hello")
    settings = settings_for_tests(
        tmp_path,
        tools={"workspaces": {"default": str(ws)}},
        replicas={"registry_recheck_s": recheck_s},
    )
    with (
        serve_app(create_app(create_slice(), settings)) as a,
        serve_app(create_app(create_slice(), settings)) as b,
    ):
        assert read_file(b) == 200 and "read_file" in offered(b)
        r = httpx.patch(f"{a}/v1/tools/read_file", json={"enabled": False}, headers=AUTH)
        assert r.status_code == 200 and r.json()["enabled"] is False
        flipped = time.monotonic()
        if recheck_s == 0:
            assert read_file(b) == 403  # at once
        else:
            while read_file(b) != 403:
                assert time.monotonic() - flipped < recheck_s + 10  # generous: a busy machine
                time.sleep(0.02)
        assert "read_file" not in offered(b)
        status = httpx.get(f"{b}/status").json()["details"]
        assert "read_file" not in status["tools_enabled"]
        # and back, through the other replica
        httpx.patch(f"{b}/v1/tools/read_file", json={"enabled": True}, headers=AUTH)
        time.sleep(recheck_s)
        assert read_file(a) == 200 and "read_file" in offered(a)
