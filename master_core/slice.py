"""master_core: the public gateway in front of the fleet."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import MetaData

from master_core.deps import MasterDeps
from master_core.keys import KeyVerifier, sync_config_admin_key
from master_core.models import MasterBase
from master_core.routes import router
from services.agent_core.client import AgentCoreClient
from services.kit.slice_base import AtomicSlice, SliceContext
from services.session.client import SessionClient


class MasterCoreSlice(AtomicSlice):
    name = "master_core"
    internal_auth = False  # public routes authenticate with API keys instead

    def routers(self) -> list[APIRouter]:
        return [router]

    def metadata(self) -> MetaData:
        return MasterBase.metadata

    async def startup(self, ctx: SliceContext) -> None:
        await super().startup(ctx)
        self.deps = MasterDeps(
            ctx=ctx,
            keys=KeyVerifier(ctx.db),
            agent=AgentCoreClient(ctx.pool, ctx.settings.agent_core.base_url),
            sessions=SessionClient(ctx.pool, ctx.settings.session.base_url),
            own_status=self.status,
        )
        admin = ctx.settings.master_core.admin_api_key
        if admin is not None:
            raw = admin.get_secret_value()
            await ctx.db.run(lambda s: sync_config_admin_key(session=s, raw=raw))


def create_slice() -> MasterCoreSlice:
    return MasterCoreSlice()
