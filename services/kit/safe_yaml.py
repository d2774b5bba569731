"""Safe YAML loading: the safe loader only, with limits on size, nesting depth and node
count, and no anchors, aliases or custom tags.

Configuration, manifests and skill files never need aliases, and refusing them outright
closes the "billion laughs" expansion attack without having to count expansions. Every
document is first scanned as an event stream (nothing is constructed), so a hostile one is
refused before it can cost memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEFAULT_MAX_BYTES = 256 * 1024
DEFAULT_MAX_DEPTH = 32
DEFAULT_MAX_NODES = 20_000
# The tags a plain document may carry (YAML's core schema); anything else is refused.
STANDARD_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}"
    for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "binary")
)


class UnsafeYamlError(ValueError):
    """The document is too large, malformed, or uses a construct we refuse."""


def load_yaml_text(
    text: str,
    *,
    source: str = "<string>",
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> Any:
    """Parse one YAML document with the safe loader after checking its size, aliases,
    tags, nesting depth and number of nodes."""
    if len(text.encode()) > max_bytes:
        raise UnsafeYamlError(f"{source}: larger than {max_bytes} bytes")
    depth = nodes = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise UnsafeYamlError(f"{source}: anchors and aliases are not allowed")
            tag = getattr(event, "tag", None)
            if tag is not None and tag not in STANDARD_TAGS:
                raise UnsafeYamlError(f"{source}: the tag {tag!r} is not allowed")
            if isinstance(event, yaml.ScalarEvent | yaml.CollectionStartEvent):
                nodes += 1
                if nodes > max_nodes:
                    raise UnsafeYamlError(f"{source}: more than {max_nodes} nodes")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > max_depth:
                    raise UnsafeYamlError(f"{source}: nested deeper than {max_depth} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UnsafeYamlError(f"{source}: not valid YAML: {exc}") from exc
    except RecursionError as exc:  # the parser's own recursion on absurd nesting
        raise UnsafeYamlError(f"{source}: nested too deeply") from exc


def load_yaml_file(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Read and safely parse a YAML file, refusing files over ``max_bytes``."""
    size = path.stat().st_size
    if size > max_bytes:
        raise UnsafeYamlError(f"{path}: {size} bytes is larger than {max_bytes}")
    return load_yaml_text(path.read_text(encoding="utf-8"), source=str(path), max_bytes=max_bytes)
