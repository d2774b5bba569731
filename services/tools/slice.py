"""The tools slice: a registry of tools, validated calls confined to workspaces, a log."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter
from sqlalchemy import MetaData, func
from sqlmodel import Session, select

from services.kit.slice_base import AtomicSlice, SliceContext
from services.memory.client import MemoryClient
from services.tools.models import Execution, ToolsBase
from services.tools.routes import router
from services.tools.service import ToolService


class ToolsSlice(AtomicSlice):
    name = "tools"
    service: ToolService

    def __init__(self, **service_overrides: Any) -> None:
        super().__init__()
        self._overrides = service_overrides  # tests inject a fetcher, runner or memory here

    def routers(self) -> list[APIRouter]:
        return [router]

    def metadata(self) -> MetaData:
        return ToolsBase.metadata

    async def startup(self, ctx: SliceContext) -> None:
        await super().startup(ctx)
        parts: dict[str, Any] = {
            "memory": MemoryClient(ctx.pool, ctx.settings.memory.base_url),
            **self._overrides,
        }
        # Probing bubblewrap runs a process: off the event loop.
        self.service = await anyio.to_thread.run_sync(
            lambda: ToolService(ctx.settings, ctx.db, ctx.metrics.registry, **parts)
        )
        await ctx.db.run(self.service.sync)
        self.service.log_writer.start()

    async def shutdown(self) -> None:
        await self.service.log_writer.stop()

    async def status_details(self) -> dict[str, Any]:
        svc = self.service
        await svc.arefresh()

        def counts(s: Session) -> int:
            return s.exec(select(func.count()).select_from(Execution)).one()

        return {
            "exec_sandbox": svc.runner.mode,
            "exec_available": svc.runner.available,
            "exec_unavailable_reason": svc.runner.unavailable_reason,
            "exec_user": svc.runner.user[0] if svc.runner.user else None,
            "exec_programs": svc.runner.usable_programs(),
            "workspaces": {name: str(ws.root) for name, ws in svc.workspaces.items()},
            "tools_enabled": sorted(n for n, t in svc.live.items() if t.enabled),
            "executions": await self.context.db.run(counts, write=False),
        }


def create_slice(**service_overrides: Any) -> ToolsSlice:
    return ToolsSlice(**service_overrides)
