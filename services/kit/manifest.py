"""A slice's manifest, ``slice.yaml``: who it is, where it listens, what it calls."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.kit.safe_yaml import UnsafeYamlError, load_yaml_file

#: Every service of the fleet, in start-up order (dependencies first).
SLICE_NAMES: tuple[str, ...] = (
    "session",
    "providers",
    "tools",
    "memory",
    "skills",
    "event_bus",
    "communication",
    "agent_core",
)
SERVICE_NAMES: tuple[str, ...] = (*SLICE_NAMES, "master_core")


class ManifestError(ValueError):
    """A slice.yaml is missing or invalid."""


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
    capabilities: list[str] = Field(default_factory=list)
    calls: list[str] = Field(default_factory=list, description="Services this one depends on")
    quotas: SliceQuotas = Field(default_factory=SliceQuotas)


def package_dir(name: str) -> Path:
    """Folder of the service's package (``services/<name>`` or ``master_core``)."""
    module = "master_core" if name == "master_core" else f"services.{name}"
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ManifestError(f"no package for service {name!r}")
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def load_manifest(name: str) -> SliceManifest:
    """Load and validate ``slice.yaml`` of the named service."""
    path = package_dir(name) / "slice.yaml"
    try:
        manifest = SliceManifest.model_validate(load_yaml_file(path))
    except FileNotFoundError as exc:
        raise ManifestError(f"{path}: missing") from exc
    except (UnsafeYamlError, ValidationError) as exc:
        raise ManifestError(f"{path}: {exc}") from exc
    if manifest.name != name:
        raise ManifestError(f"{path}: name is {manifest.name!r}, expected {name!r}")
    return manifest
