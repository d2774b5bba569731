"""The memory slice: standard endpoints only, no domain routes yet (issue #5 builds it)."""

from __future__ import annotations

from services.kit.slice_base import AtomicSlice


class MemorySlice(AtomicSlice):
    name = "memory"


def create_slice() -> MemorySlice:
    return MemorySlice()
