"""The tool registry and the calls: schema check, run within limits, log every call."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlmodel import Session, col, select

from services.kit.config import Settings
from services.kit.context import request_id_var
from services.kit.database import SliceDatabase, after_commit, page
from services.kit.errors import Forbidden, NotFound, SliceError, Unprocessable
from services.kit.group_commit import GroupCommitter
from services.kit.metrics import LATENCY_BUCKETS
from services.kit.outbox import add_event
from services.kit.redact import redact
from services.kit.versions import SharedVersion, bump_version
from services.memory.client import MemoryClient
from services.tools.builtins import BUILTINS, CallContext, ToolSpec
from services.tools.models import Execution, ToolRecord
from services.tools.sandbox import Runner
from services.tools.schemas import (
    ExecutionPublic,
    OpenAIFunction,
    OpenAITool,
    ToolCallRequest,
    ToolCallResult,
    ToolPublic,
    ToolUpdate,
)
from services.tools.web import WebFetcher
from services.tools.workspace import ToolFailure, Workspace

log = structlog.get_logger("tools")
TIMEOUT_SLACK_S = 5.0
REGISTRY = "tools"  # its row in kit_registry_versions


def describe_error(error: ValidationError) -> str:
    """``arguments.path: 5 is not of type 'string' (rule: type)``."""
    where = "arguments" + "".join(
        f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path
    )
    return f"{where}: {error.message} (rule: {error.validator})"


class ToolMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "tool_calls_total", "Tool calls by tool and outcome", ["tool", "outcome"],
            registry=registry,
        )  # fmt: skip
        self.duration = Histogram(
            "tool_call_duration_seconds", "Tool call duration", ["tool"],
            buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.bytes_out = Counter(
            "tool_output_bytes_total", "Bytes of tool results", ["tool"], registry=registry
        )


@dataclass
class _Live:
    """A registered tool as calls see it: the code and its current settings."""

    spec: ToolSpec
    validator: Draft202012Validator
    enabled: bool
    timeout_s: float
    output_cap: int


class ToolService:
    def __init__(
        self,
        settings: Settings,
        db: SliceDatabase,
        registry: CollectorRegistry,
        *,
        runner: Runner | None = None,
        fetcher: WebFetcher | None = None,
        memory: MemoryClient | None = None,
    ) -> None:
        t = settings.tools
        self.settings, self.db = settings, db
        self.memory = memory  # remember/recall call the memory slice through it
        roots = dict(t.workspaces) or {"default": settings.data_dir / "workspace"}
        self.workspaces = {name: Workspace(Path(path)) for name, path in roots.items()}
        self.runner = runner or Runner(t)
        self.fetcher = fetcher or WebFetcher(
            allow_hosts=t.web_fetch_allow_hosts, max_redirects=t.web_fetch_max_redirects
        )
        self.metrics = ToolMetrics(registry)
        self.specs = {spec.name: spec for spec in BUILTINS}
        # concurrent calls share a transaction (and an fsync) for their log rows
        self.log_writer: GroupCommitter[Execution, int] = GroupCommitter(db, _write_executions)
        self.live: dict[str, _Live] = {}
        # replicas share the registry: a change made on another is loaded within recheck_s
        self.version = SharedVersion(REGISTRY, recheck_s=settings.replicas.registry_recheck_s)
        # tools this process cannot offer, whatever the registry says, and why
        self.unavailable: dict[str, str] = {}
        if self.runner.unavailable_reason is not None:
            self.unavailable["exec"] = self.runner.unavailable_reason

    # -- registry ----------------------------------------------------------------------------

    def sync(self, session: Session) -> None:
        """Register the built-ins (new ones added, code fields refreshed, operator settings
        kept), then load the live view once that is committed."""
        now = datetime.now(UTC)
        t = self.settings.tools
        for spec in self.specs.values():
            row = session.get(ToolRecord, spec.name)
            if row is None:
                row = ToolRecord(
                    name=spec.name,
                    description=spec.description,
                    parameters=spec.parameters,
                    version=spec.version,
                    permission=spec.permission,
                    timeout_s=t.default_timeout_s,
                    output_cap_bytes=t.output_cap_bytes,
                    created_at=now,
                    updated_at=now,
                )
            else:
                row.description, row.parameters = spec.description, spec.parameters
                row.version, row.permission = spec.version, spec.permission
            session.add(row)
        after_commit(session, self.reload_committed)

    def reload_committed(self) -> None:
        """Load the live view in a unit of its own (after a change was committed)."""
        with self.db.session(write=False) as session:
            self.reload(session)

    def reload(self, session: Session) -> None:
        """Load the live view from the registry (its version first: a change committed
        between the two reads is loaded again at the next check, never missed)."""
        version = self.version.moved(session)
        live = {}
        for row in session.exec(select(ToolRecord)):
            spec = self.specs.get(row.name)
            if spec is None:
                continue  # registered by code that is not loaded in this process
            live[row.name] = _Live(
                spec,
                Draft202012Validator(spec.parameters),
                row.enabled,
                row.timeout_s,
                row.output_cap_bytes,
            )
        self.live = live
        if version is not None:
            self.version.loaded_as(version)

    def refresh(self) -> None:
        """Reload if another replica changed the registry (one primary-key read, at most
        every ``replicas.registry_recheck_s``); for the synchronous routes."""
        if self.version.due():
            with self.db.session(write=False) as session:
                self._reload_if_moved(session)

    async def arefresh(self) -> None:
        """``refresh`` for the call path: no I/O at all until the re-check is due."""
        if self.version.due():
            await self.db.run(self._reload_if_moved, write=False)

    def _reload_if_moved(self, session: Session) -> None:
        if self.version.moved(session) is not None:
            self.reload(session)

    def list_tools(self, session: Session) -> list[ToolPublic]:
        rows = session.exec(select(ToolRecord).order_by(col(ToolRecord.name))).all()
        return [self._public(r) for r in rows]

    def _public(self, row: ToolRecord) -> ToolPublic:
        reason = self.unavailable.get(row.name)
        return ToolPublic.model_validate(
            {**row.model_dump(), "available": reason is None, "unavailable_reason": reason}
        )

    def openai_tools(self) -> list[OpenAITool]:
        self.refresh()
        return [
            OpenAITool(
                function=OpenAIFunction(
                    name=name, description=t.spec.description, parameters=t.spec.parameters
                )
            )
            for name, t in sorted(self.live.items())
            if t.enabled and name not in self.unavailable
        ]

    def update_tool(self, session: Session, name: str, data: ToolUpdate) -> ToolPublic:
        row = session.get(ToolRecord, name)
        if row is None:
            raise NotFound(f"tool {name!r} not found")
        for key, value in data.model_dump(exclude_unset=True, exclude_none=True).items():
            setattr(row, key, value)
        row.updated_at = datetime.now(UTC)
        session.add(row)
        bump_version(session, name=REGISTRY)  # the other replicas reload it
        session.flush()
        after_commit(session, self.reload_committed)
        return self._public(row)

    # -- calls -------------------------------------------------------------------------------

    async def call(self, name: str, req: ToolCallRequest, caller: str | None) -> ToolCallResult:
        """Validate, run within the tool's limits, and log the call whatever happens."""
        await self.arefresh()
        tool = self.live.get(name)
        if tool is None:
            raise NotFound(f"tool {name!r} not found")
        started = time.perf_counter()
        result: dict[str, Any] | None = None
        error: SliceError | None = None
        try:
            if not tool.enabled:
                raise Forbidden(f"tool {name!r} is disabled")
            if name in self.unavailable:
                raise Forbidden(self.unavailable[name], code="tool_unavailable")
            workspace = self.workspaces.get(req.workspace)
            if workspace is None:
                raise NotFound(f"workspace {req.workspace!r} is not configured")
            problems = sorted(tool.validator.iter_errors(req.arguments), key=lambda e: e.path)
            if problems:
                best = best_match(problems)
                shown = [best, *[p for p in problems if p is not best][:2]]
                raise Unprocessable(
                    "; ".join(describe_error(p) for p in shown),
                    code="invalid_arguments",
                    details=[describe_error(p) for p in problems[:20]],
                )
            ctx = CallContext(
                workspace=workspace,
                settings=self.settings.tools,
                output_cap=tool.output_cap,
                timeout_s=tool.timeout_s,
                runner=self.runner,
                fetcher=self.fetcher,
                memory=self.memory,
                owner=req.owner,
                session_id=req.session_id,
            )
            try:
                # exec enforces its own limit (and kills the process group); this bounds
                # every tool, with slack so exec reports its own timeout first even on a
                # busy machine.
                async with asyncio.timeout(tool.timeout_s + TIMEOUT_SLACK_S):
                    result = await tool.spec.run(ctx, req.arguments)
            except TimeoutError:
                raise SliceError(
                    f"tool {name!r} took longer than {tool.timeout_s:g}s",
                    status_code=504,
                    code="tool_timeout",
                ) from None
            except ToolFailure as failure:
                raise SliceError(
                    failure.message, status_code=failure.status, code=failure.code
                ) from None
            except OSError as exc:
                # e.g. a folder removed or replaced while the call was using it
                raise SliceError(
                    f"the workspace changed during the call: {exc.strerror or exc}",
                    status_code=409,
                    code="fs_conflict",
                ) from None
        except SliceError as exc:
            error = exc
        duration_ms = (time.perf_counter() - started) * 1000
        body = json.dumps(result) if result is not None else ""
        outcome = "ok" if error is None else error.code
        execution_id = await self._log(
            name, req, caller, duration_ms, outcome, error, len(body.encode())
        )
        self.metrics.calls.labels(name, outcome).inc()
        self.metrics.duration.labels(name).observe(duration_ms / 1000)
        if error is not None:
            error.headers = {**(error.headers or {}), "X-Execution-ID": str(execution_id)}
            raise error
        assert result is not None
        self.metrics.bytes_out.labels(name).inc(len(body))
        return ToolCallResult(
            execution_id=execution_id, tool=name, result=result, duration_ms=duration_ms
        )

    async def _log(
        self,
        name: str,
        req: ToolCallRequest,
        caller: str | None,
        duration_ms: float,
        outcome: str,
        error: SliceError | None,
        bytes_out: int,
    ) -> int:
        cap = self.settings.tools.max_log_argument_bytes
        args = json.dumps(redact(req.arguments), ensure_ascii=False)
        if len(args) > cap:
            args = args[:cap] + f"...[{len(args) - cap} more characters]"
        row = Execution(
            created_at=datetime.now(UTC),
            tool=name,
            workspace=req.workspace,
            arguments=args,
            session_id=req.session_id,
            turn_id=req.turn_id,
            caller=caller,
            request_id=request_id_var.get(),
            duration_ms=round(duration_ms, 3),
            outcome=outcome,
            error=None if error is None else error.message[:1000],
            bytes_out=bytes_out,
        )

        return await self.log_writer.submit(row)


def _write_executions(session: Session, rows: list[Execution]) -> list[int]:
    session.add_all(rows)
    session.flush()
    for row in rows:
        add_event(
            session,
            "tools.executed",
            "tools.executed",
            {
                "execution_id": row.id,
                "tool": row.tool,
                "outcome": row.outcome,
                "session_id": row.session_id,
                "turn_id": row.turn_id,
                "caller": row.caller,
                "duration_ms": row.duration_ms,
                "bytes_out": row.bytes_out,
            },
        )
    return [row.id or 0 for row in rows]


def list_executions(
    session: Session,
    *,
    tool: str | None,
    session_id: str | None,
    outcome: str | None,
    since: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[ExecutionPublic], int]:
    where = []
    if tool is not None:
        where.append(col(Execution.tool) == tool)
    if session_id is not None:
        where.append(col(Execution.session_id) == session_id)
    if outcome is not None:
        where.append(col(Execution.outcome) == outcome)
    if since is not None:
        where.append(col(Execution.created_at) >= since)
    rows, count = page(
        session, Execution, where, col(Execution.id).desc(), limit=limit, offset=offset
    )
    return [ExecutionPublic.model_validate(r, from_attributes=True) for r in rows], count
