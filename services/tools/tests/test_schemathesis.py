"""schemathesis against the tools slice's OpenAPI: generated requests, 0 server errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from services.kit.app import create_app
from services.kit.testing import TEST_TOKEN, serve_app, settings_for_tests
from services.tools.slice import create_slice
from services.tools.tests.conftest import RecordingTransport, StubResolver
from services.tools.web import WebFetcher


@pytest.fixture(scope="module")
def tools_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    cfg = settings_for_tests(tmp, tools={"workspaces": {"default": str(tmp / "ws")}})
    fetcher = WebFetcher(
        allow_hosts=[], max_redirects=2, resolver=StubResolver({}), transport=RecordingTransport()
    )
    with serve_app(create_app(create_slice(fetcher=fetcher), cfg)) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        schema.config.update(base_url=url, headers={"X-Internal-Token": TEST_TOKEN})
        yield schema


def test_no_server_errors(tools_api: schemathesis.BaseSchema) -> None:
    """Every operation, 40 generated cases each (schemathesis's pytest plugin does not load
    on this pytest, so the operations are driven through hypothesis directly)."""
    failures: list[str] = []
    operations, cases = 0, 0
    for result in tools_api.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            nonlocal cases
            cases += 1
            response = case.call(headers={"X-Internal-Token": TEST_TOKEN})
            try:
                case.validate_response(response, checks=[not_a_server_error])
            except Exception as exc:
                failures.append(f"{case.method} {case.formatted_path}: {exc}"[:500])

        check()
    assert operations >= 5 and cases >= operations * 10
    assert failures == []
    print(f"schemathesis: {operations} operations, {cases} cases, 0 server errors")
