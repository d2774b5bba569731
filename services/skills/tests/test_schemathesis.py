"""schemathesis against the skills slice's OpenAPI: generated requests, 0 server errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.kit.app import create_app
from services.kit.fuzz import fuzz
from services.kit.testing import serve_app, settings_for_tests
from services.skills.slice import create_slice
from services.skills.tests.conftest import ROOT


@pytest.mark.integration
def test_no_server_errors(tmp_path: Path) -> None:
    cfg = settings_for_tests(
        tmp_path, skills={"folders": [str(ROOT / "skills"), str(tmp_path / "data" / "skills")]}
    )
    with serve_app(create_app(create_slice(), cfg)) as url:
        report = fuzz(url)
    assert report.operations >= 8 and report.cases >= report.operations * 5
    assert report.failures == [], report.failures
    print(f"schemathesis: {report.operations} operations, {report.cases} cases, 0 server errors")
