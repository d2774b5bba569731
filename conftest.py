"""Markers for the whole suite: a test is ``integration`` when it starts servers (a slice
on a real port, a service process, the fleet, a stand-in for an outside API) and ``unit``
otherwise. ``make test-fast`` runs ``-m unit``, and a unit test that tries to start a
server fails saying so, so the split cannot drift."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.kit.testing import refuse_servers

# fixtures that start servers: a test using one is an integration test
SERVER_FIXTURES = frozenset(
    {
        "agent", "api", "bus", "client", "dash_env", "demo", "exec_env", "fleet",
        "hostile_env", "links", "master", "memory_api", "nbus", "providers", "scripted",
        "session_api", "sim_url", "simulator", "skills_env", "tools_env", "trio", "url",
    }
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("integration") or item.get_closest_marker("unit"):
            continue
        names = set(getattr(item, "fixturenames", ()))
        item.add_marker(pytest.mark.integration if names & SERVER_FIXTURES else pytest.mark.unit)


@pytest.fixture(autouse=True)
def _unit_tests_start_no_servers(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("unit") is None:
        yield
        return
    with refuse_servers("a test marked unit starts no servers; mark it integration"):
        yield
