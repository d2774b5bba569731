"""What the tools routes need, built at start-up (kept apart from slice.py: no cycle)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.tools.service import ToolService


async def get_tool_service(request: Request) -> ToolService:
    service: ToolService = request.app.state.slice.service
    return service


ToolServiceDep = Annotated[ToolService, Depends(get_tool_service)]
