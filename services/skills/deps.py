"""What the skills routes need (kept apart from slice.py: no cycle)."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request

from services.skills.schemas import ReloadResult


class Reloader(Protocol):
    async def reload(self) -> ReloadResult: ...

    async def upload(self, data: bytes) -> str: ...

    async def refresh(self) -> None: ...


async def get_skills(request: Request) -> Reloader:
    slice_: Reloader = request.app.state.slice
    return slice_


SkillsDep = Annotated[Reloader, Depends(get_skills)]
