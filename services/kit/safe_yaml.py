"""Safe YAML loading: the safe loader only, a size cap, and no anchors or aliases.

Configuration and manifests never need aliases, and refusing them outright closes the
"billion laughs" expansion attack without having to count nodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEFAULT_MAX_BYTES = 256 * 1024


class UnsafeYamlError(ValueError):
    """The document is too large, malformed, or uses a construct we refuse."""


def load_yaml_text(
    text: str, *, source: str = "<string>", max_bytes: int = DEFAULT_MAX_BYTES
) -> Any:
    """Parse one YAML document with the safe loader after checking size and aliases."""
    if len(text.encode()) > max_bytes:
        raise UnsafeYamlError(f"{source}: larger than {max_bytes} bytes")
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise UnsafeYamlError(f"{source}: anchors and aliases are not allowed")
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UnsafeYamlError(f"{source}: not valid YAML: {exc}") from exc


def load_yaml_file(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Read and safely parse a YAML file, refusing files over ``max_bytes``."""
    size = path.stat().st_size
    if size > max_bytes:
        raise UnsafeYamlError(f"{path}: {size} bytes is larger than {max_bytes}")
    return load_yaml_text(path.read_text(encoding="utf-8"), source=str(path), max_bytes=max_bytes)
