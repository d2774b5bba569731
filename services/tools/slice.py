"""The tools slice: standard endpoints only, no domain routes yet (issue #4 builds it)."""

from __future__ import annotations

from services.kit.slice_base import AtomicSlice


class ToolsSlice(AtomicSlice):
    name = "tools"


def create_slice() -> ToolsSlice:
    return ToolsSlice()
