"""The tools slice's HTTP routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query

from services.kit.app import DbSessionDep
from services.kit.context import CALLER_HEADER
from services.kit.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    Unprocessable,
    error_responses,
)
from services.kit.query import PageDep
from services.tools.deps import ToolServiceDep
from services.tools.schemas import (
    TOOL_NAME,
    ExecutionsPublic,
    OpenAIToolsPublic,
    ToolCallRequest,
    ToolCallResult,
    ToolPublic,
    ToolsPublic,
    ToolUpdate,
)
from services.tools.service import list_executions

router = APIRouter(prefix="/v1", tags=["tools"])
ToolName = Annotated[str, Path(pattern=TOOL_NAME, description="Tool name")]


@router.get("/tools")
def read_tools(db: DbSessionDep, tools: ToolServiceDep) -> ToolsPublic:
    """Every registered tool with its schema, permission class, limits and state
    (``data``), and the enabled ones as OpenAI-format definitions (``tools``)."""
    data = tools.list_tools(db)
    return ToolsPublic(data=data, count=len(data), tools=tools.openai_tools())


@router.get("/tools/openai")
def read_openai_tools(tools: ToolServiceDep) -> OpenAIToolsPublic:
    """The enabled tools as chat completions' ``tools`` list, for the agent."""
    return OpenAIToolsPublic(tools=tools.openai_tools())


@router.patch("/tools/{name}", responses=error_responses(NotFound))
def update_tool(
    name: ToolName, body: ToolUpdate, db: DbSessionDep, tools: ToolServiceDep
) -> ToolPublic:
    """Enable or disable a tool, or change its time limit or output cap."""
    return tools.update_tool(db, name, body)


@router.post(
    "/tools/{name}/call",
    responses=error_responses(BadRequest, Forbidden, NotFound, Unprocessable),
)
async def call_tool(
    name: ToolName,
    body: ToolCallRequest,
    tools: ToolServiceDep,
    caller: Annotated[str | None, Header(alias=CALLER_HEADER, max_length=64)] = None,
) -> ToolCallResult:
    """Run a tool. Arguments are checked against its JSON Schema first (422 naming the
    field and the rule); a refused path is 400, a disallowed program or address 403, a
    missing file 404, an ambiguous edit 409, a time-out 504. Every call is logged."""
    return await tools.call(name, body, caller)


@router.get("/executions")
def read_executions(
    db: DbSessionDep,
    page: PageDep,
    tool: Annotated[str | None, Query(pattern=TOOL_NAME)] = None,
    session_id: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[datetime | None, Query(description="From this time (ISO 8601)")] = None,
) -> ExecutionsPublic:
    """The execution log, newest first, filtered by tool, session, outcome and time."""
    data, count = list_executions(
        db,
        tool=tool,
        session_id=session_id,
        outcome=outcome,
        since=since,
        limit=page.limit,
        offset=page.offset,
    )
    return ExecutionsPublic(data=data, count=count)
