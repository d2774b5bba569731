"""schemathesis against the tools slice's OpenAPI: generated requests, 0 server errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.kit.app import create_app
from services.kit.fuzz import fuzz
from services.kit.testing import free_port, serve_app, settings_for_tests
from services.memory.slice import create_slice as create_memory_slice
from services.tools.slice import create_slice
from services.tools.tests.conftest import RecordingTransport, StubResolver
from services.tools.web import WebFetcher


@pytest.mark.integration
def test_no_server_errors(tmp_path: Path) -> None:
    cfg = settings_for_tests(
        tmp_path,
        tools={"workspaces": {"default": str(tmp_path / "ws")}},
        memory={"port": free_port(), "consolidate_every_s": 0},
    )
    fetcher = WebFetcher(
        allow_hosts=[], max_redirects=2, resolver=StubResolver({}), transport=RecordingTransport()
    )
    with (
        # the memory slice the memory tools (and /ready) call
        serve_app(create_app(create_memory_slice(), cfg), port=cfg.memory.port),
        serve_app(create_app(create_slice(fetcher=fetcher), cfg)) as url,
    ):
        report = fuzz(url)
    assert report.operations >= 5 and report.cases >= report.operations * 5
    assert report.failures == []
    print(f"schemathesis: {report.operations} operations, {report.cases} cases, 0 server errors")
