"""schemathesis against a running slice: every operation of its OpenAPI, generated cases,
and a count of server errors. (schemathesis's pytest plugin does not load on this pytest,
so operations are driven through hypothesis directly.)"""

from __future__ import annotations

from dataclasses import dataclass, field

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from services.kit.testing import TEST_TOKEN


@dataclass
class FuzzReport:
    operations: int = 0
    cases: int = 0
    failures: list[str] = field(default_factory=list)


def fuzz(base_url: str, *, max_examples: int = 40) -> FuzzReport:
    """Generated requests against every operation of the slice at ``base_url``."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    schema.config.update(base_url=base_url, headers={"X-Internal-Token": TEST_TOKEN})
    report = FuzzReport()
    for result in schema.get_all_operations():
        if not hasattr(result, "ok"):
            report.failures.append(f"the schema has an invalid operation: {result.err()}")
            continue
        operation = result.ok()
        report.operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            report.cases += 1
            response = case.call(headers={"X-Internal-Token": TEST_TOKEN})
            try:
                case.validate_response(response, checks=[not_a_server_error])
            except Exception as exc:
                report.failures.append(f"{case.method} {case.formatted_path}: {exc}"[:500])

        check()
    return report
