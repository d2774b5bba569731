"""A slice's manifest, ``slice.yaml``, and the fleet's services, found rather than listed.

Built-in slices are the packages under ``services/`` that hold a ``slice.yaml`` (a scan of
files: nothing is imported). Any other package joins through the entry-point group
``refactorbot.slices`` (name: the service, value: its package), as the gateway does in
pyproject.toml and an installed slice package does in its own::

    [project.entry-points."refactorbot.slices"]
    weather = "weather_slice"

Services start in dependency order (each after the services its ``calls`` names, the gateway
last).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

import services
from services.kit.safe_yaml import UnsafeYamlError, load_yaml_file

SLICES_GROUP = "refactorbot.slices"


class ManifestError(ValueError):
    """A slice.yaml is missing or invalid, or a service is unknown."""


class SliceQuotas(BaseModel):
    """Limits the kit enforces for every request to this service."""

    model_config = ConfigDict(extra="forbid")
    max_body_bytes: int = Field(1_048_576, gt=0, description="Largest request body accepted")
    request_timeout_s: float = Field(60.0, gt=0, description="Default deadline for a request")


class SliceManifest(BaseModel):
    """The contents of a slice.yaml."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    version: str
    description: str
    port: int = Field(ge=1, le=65535)
    database: str = Field(description="SQLite file name under the data folder")
    role: Literal["slice", "gateway"] = Field(
        "slice", description="gateway: the public entry point, started last, not a slice"
    )
    capabilities: list[str] = Field(default_factory=list)
    calls: list[str] = Field(default_factory=list, description="Services this one depends on")
    quotas: SliceQuotas = Field(default_factory=SliceQuotas)


@dataclass(frozen=True)
class ServiceEntry:
    """A service found in the fleet: its package and its manifest."""

    package: str
    path: Path
    manifest: SliceManifest

    @property
    def name(self) -> str:
        return self.manifest.name


def _read_manifest(path: Path) -> SliceManifest:
    try:
        return SliceManifest.model_validate(load_yaml_file(path))
    except FileNotFoundError as exc:
        raise ManifestError(f"{path}: missing") from exc
    except (UnsafeYamlError, ValidationError) as exc:
        raise ManifestError(f"{path}: {exc}") from exc


def _package_path(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ManifestError(f"no package {package!r}")
    return Path(next(iter(spec.submodule_search_locations)))


def _found() -> list[ServiceEntry]:
    """Packages under services/ with a slice.yaml, then the entry points' packages."""
    found = [
        ServiceEntry(f"services.{folder.name}", folder, _read_manifest(folder / "slice.yaml"))
        for root in services.__path__
        for folder in sorted(Path(root).iterdir())
        if (folder / "slice.yaml").is_file()
    ]
    for ep in entry_points(group=SLICES_GROUP):
        path = _package_path(ep.value)
        entry = ServiceEntry(ep.value, path, _read_manifest(path / "slice.yaml"))
        if entry.name != ep.name:
            raise ManifestError(
                f"{path / 'slice.yaml'}: name is {entry.name!r}, but the entry point in "
                f"{SLICES_GROUP} is {ep.name!r}"
            )
        found.append(entry)
    return found


def _start_order(entries: list[ServiceEntry]) -> list[ServiceEntry]:
    """Each service after the ones it calls (by name otherwise), the gateway last."""
    by_name: dict[str, ServiceEntry] = {}
    for entry in entries:
        if entry.name in by_name:
            where = f"{by_name[entry.name].path} and {entry.path}"
            raise ManifestError(f"two services named {entry.name!r}: {where}")
        by_name[entry.name] = entry
    for entry in entries:
        for callee in entry.manifest.calls:
            if callee not in by_name:
                raise ManifestError(
                    f"{entry.path / 'slice.yaml'}: calls {callee!r}, which is not a service "
                    f"(found: {', '.join(sorted(by_name))})"
                )
    ordered: list[ServiceEntry] = []
    placed: set[str] = set()
    pending = sorted(by_name.values(), key=lambda e: (e.manifest.role == "gateway", e.name))
    while pending:
        ready = [e for e in pending if placed.issuperset(e.manifest.calls)]
        if not ready:
            names = ", ".join(e.name for e in pending)
            raise ManifestError(f"services calling each other in a cycle: {names}")
        ordered.append(ready[0])
        placed.add(ready[0].name)
        pending.remove(ready[0])
    return ordered


@cache
def discover() -> dict[str, ServiceEntry]:
    """Every service of the fleet by name, in start-up order (dependencies first)."""
    return {entry.name: entry for entry in _start_order(_found())}


def service_names() -> tuple[str, ...]:
    """Every service, slices and the gateway, in start-up order."""
    return tuple(discover())


def slice_names() -> tuple[str, ...]:
    """Every slice (the services behind the gateway), in start-up order."""
    return tuple(n for n, e in discover().items() if e.manifest.role == "slice")


def gateway_name() -> str:
    """The one service whose manifest says ``role: gateway``."""
    gateways = [n for n, e in discover().items() if e.manifest.role == "gateway"]
    if len(gateways) != 1:
        raise ManifestError(f"the fleet needs exactly one gateway service, found {gateways}")
    return gateways[0]


def service_entry(name: str) -> ServiceEntry:
    """The named service, or ManifestError naming the ones there are."""
    try:
        return discover()[name]
    except KeyError:
        raise ManifestError(f"unknown service {name!r}; one of: {', '.join(discover())}") from None


def package_dir(name: str) -> Path:
    """Folder of the service's package (``services/<name>``, or wherever it is installed)."""
    return service_entry(name).path


def load_manifest(name: str) -> SliceManifest:
    """The validated ``slice.yaml`` of the named service."""
    return service_entry(name).manifest


def __getattr__(name: str) -> tuple[str, ...]:
    # SLICE_NAMES and SERVICE_NAMES, as they were before discovery, looked up when asked for.
    if name == "SLICE_NAMES":
        return slice_names()
    if name == "SERVICE_NAMES":
        return service_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
