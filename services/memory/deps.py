"""What the memory routes need, built at start-up (kept apart from slice.py: no cycle)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.memory.service import Consolidator


@dataclass
class MemoryDeps:
    consolidator: Consolidator


async def get_memory_deps(request: Request) -> MemoryDeps:
    deps: MemoryDeps = request.app.state.slice.deps
    return deps


MemoryDep = Annotated[MemoryDeps, Depends(get_memory_deps)]
