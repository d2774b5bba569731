"""schemathesis against the event bus's OpenAPI: generated requests, 0 server errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.event_bus.slice import create_slice
from services.kit.app import create_app
from services.kit.fuzz import fuzz
from services.kit.testing import serve_app, settings_for_tests


@pytest.mark.integration
def test_no_server_errors(tmp_path: Path) -> None:
    # long polls are capped short: generated requests may ask for the longest wait
    # pushing is off: generated webhook URLs must never be called
    settings = settings_for_tests(tmp_path, event_bus={"max_wait_s": 0.2, "push_enabled": False})
    with serve_app(create_app(create_slice(), settings)) as url:
        report = fuzz(url, max_examples=30)
    assert report.operations >= 8
    assert report.failures == [], report.failures
    print(f"schemathesis: {report.operations} operations, {report.cases} cases, 0 server errors")
