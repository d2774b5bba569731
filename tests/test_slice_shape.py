"""The kit holds only what every slice shares: services are discovered, each slice's
callers take its default timeout from its client, and the kit names no slice."""

from __future__ import annotations

import ast
import importlib
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


def _strings(tree: ast.AST) -> list[str]:
    """The string literals of a module, but attribute names listed in ``__slots__``."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets
        ):
            skipped |= {id(n) for n in ast.walk(node.value)}
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skipped
    ]


def test_the_kit_names_no_slice() -> None:
    names = slice_names()
    for path in (ROOT / "services" / "kit").glob("*.py"):
        found = [
            text
            for text in _strings(ast.parse(path.read_text()))
            for name in names
            if text == name or text.startswith((f"{name}.", f"{name}/", f"services.{name}"))
        ]
        assert not found, f"{path.name}: {found}"


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


def test_tests_reach_other_slices_only_through_their_contract() -> None:
    """A slice's tests (and the kit's) never import another slice's service.py or models.py:
    like the slice itself, they talk to it over HTTP (client.py, schemas.py)."""
    for path in (ROOT / "services").glob("*/tests/*.py"):
        own = path.parent.parent.name
        tree = ast.parse(path.read_text())
        modules = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        for module in modules:
            parts = module.split(".")
            if len(parts) >= 3 and parts[0] == "services" and parts[1] != own:
                assert parts[2] not in ("service", "models"), f"{path}: imports {module}"
