"""schemathesis against a running slice: every operation of its OpenAPI, generated cases,
and a count of server errors. (schemathesis's pytest plugin does not load on this pytest,
so operations are driven through hypothesis directly.)"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from services.kit.testing import TEST_TOKEN


@dataclass
class FuzzReport:
    operations: int = 0
    cases: int = 0
    failures: list[str] = field(default_factory=list)


def fuzz(
    base_url: str,
    *,
    max_examples: int = 40,
    headers: dict[str, str] | None = None,
    skip: Callable[[str, str], bool] | None = None,
) -> FuzzReport:
    """Generated requests against every operation of the slice at ``base_url`` (sent with
    ``headers``, the internal token by default), but those ``skip(method, path)`` names."""
    headers = headers or {"X-Internal-Token": TEST_TOKEN}
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    schema.config.update(base_url=base_url, headers=headers)
    report = FuzzReport()
    for result in schema.get_all_operations():
        if not hasattr(result, "ok"):
            report.failures.append(f"the schema has an invalid operation: {result.err()}")
            continue
        operation = result.ok()
        if skip is not None and skip(operation.method.upper(), operation.path):
            continue
        report.operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            report.cases += 1
            response = case.call(headers=headers)
            try:
                case.validate_response(response, checks=[not_a_server_error])
            except Exception as exc:
                report.failures.append(f"{case.method} {case.formatted_path}: {exc}"[:500])

        check()
    return report


def fuzz_stateful(
    base_url: str,
    *,
    headers: dict[str, str] | None = None,
    max_examples: int = 10,
    step_count: int = 6,
) -> FuzzReport:
    """Sequences of calls chained along the OpenAPI links of the service at ``base_url``
    (an id one response returns used by the next call); server errors are collected."""
    from hypothesis import settings as hypothesis_settings

    headers = headers or {"X-Internal-Token": TEST_TOKEN}
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    schema.config.update(base_url=base_url, headers=headers)
    report = FuzzReport()
    machine = schema.as_state_machine()

    class Workflow(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, object]:
            return {"headers": headers}

        def validate_response(self, response: Any, case: schemathesis.Case, **_: object) -> None:
            report.cases += 1
            try:
                case.validate_response(response, checks=[not_a_server_error])
            except Exception as exc:
                report.failures.append(f"{case.method} {case.formatted_path}: {exc}"[:500])

    Workflow.run(
        settings=hypothesis_settings(
            max_examples=max_examples,
            stateful_step_count=step_count,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    return report
