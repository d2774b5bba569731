"""The kit holds only what every slice shares: services are discovered, each slice's
callers take its default timeout from its client, and the kit names no slice."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from services.kit.client import SliceClient
from services.kit.config import load_settings
from services.kit.manifest import discover, gateway_name, service_names, slice_names
from services.kit.plugins import dashboard_pages

ROOT = Path(__file__).resolve().parents[1]


def test_services_start_after_what_they_call_and_the_gateway_last() -> None:
    names = service_names()
    assert set(slice_names()) >= {"session", "providers", "agent_core", "event_bus"}
    assert names[-1] == gateway_name() == "master_core"
    for entry in discover().values():
        for callee in entry.manifest.calls:
            assert names.index(callee) < names.index(entry.name)


def test_each_service_has_its_section_with_the_same_keys() -> None:
    s = load_settings()
    assert s.tools.exec_allow[0] == "echo" and s.tools.exec_unsandboxed is False
    assert type(s.tools).__module__ == "services.tools.config"
    assert s.service("communication").port == 8104


def test_callers_default_timeouts_are_in_the_clients_and_match_the_quotas() -> None:
    checked = 0
    for name, entry in discover().items():
        if not (entry.path / "client.py").is_file():
            continue
        module = importlib.import_module(f"{entry.package}.client")
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, SliceClient)
                and obj.__module__ == module.__name__
                and obj.default_timeout_s is not None
            ):
                assert obj.default_timeout_s == entry.manifest.quotas.request_timeout_s, name
                checked += 1
    assert checked >= 2  # providers and agent_core


def test_the_kit_names_no_slice() -> None:
    names = "|".join(slice_names())
    for path in (ROOT / "services" / "kit").glob("*.py"):
        code = [
            line
            for line in path.read_text().splitlines()
            if not line.lstrip().startswith("#") and '"""' not in line
        ]
        quoted = [line for line in code if re.search(rf"[\"']({names})[\"'./]", line)]
        assert not quoted, f"{path.name}: {quoted}"


def test_every_slice_page_is_registered_and_exists() -> None:
    pages = dashboard_pages()
    registered = {p.path for p in pages}
    on_disk = {
        path.resolve()
        for root in (ROOT / "services", ROOT / "master_core")
        for path in root.glob("**/ui/*.py")
    }
    assert registered == on_disk
    for path in on_disk:
        assert "from dashboard" not in path.read_text(), path
