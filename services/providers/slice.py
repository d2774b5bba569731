"""The providers slice: RefactorBot's LLM gateway."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import anyio
import structlog
from fastapi import APIRouter
from sqlalchemy import MetaData, func
from sqlmodel import Session, select

from services.kit.slice_base import AtomicSlice, SliceContext
from services.providers import budgets
from services.providers.catalog import Catalog
from services.providers.deps import ProvidersDeps
from services.providers.ledger import LedgerWriter
from services.providers.metrics import ProvidersMetrics
from services.providers.models import ProvidersBase, UsageRecord
from services.providers.routes import router
from services.providers.upstreams import UpstreamRegistry, make_client

log = structlog.get_logger("providers")


class ProvidersSlice(AtomicSlice):
    name = "providers"
    _refresher: asyncio.Task[None] | None = None

    def routers(self) -> list[APIRouter]:
        return [router]

    def metadata(self) -> MetaData:
        return ProvidersBase.metadata

    async def startup(self, ctx: SliceContext) -> None:
        await super().startup(ctx)
        s = ctx.settings
        key = s.openrouter.api_key
        llm = make_client(
            s,
            ctx.pool.session,
            base_url=s.llm_base_url,
            api_key=key.get_secret_value() if key else None,
        )
        # Holds of calls that never settled (the process died mid-call) are released.
        stale_after = timedelta(seconds=2 * s.providers.upstream_timeout_s)
        released = await ctx.db.run(
            lambda db: budgets.release_stale(session=db, older_than=stale_after)
        )
        if released:
            log.warning("released_stale_budget_holds", count=released)
        catalog = Catalog(ctx.db)
        await anyio.to_thread.run_sync(catalog.load)
        upstreams = UpstreamRegistry(s, ctx.pool.session, llm)
        await ctx.db.run(upstreams.load, write=False)
        registry = ctx.metrics.registry
        ledger = LedgerWriter(
            ctx.db,
            mode=s.providers.ledger_mode,
            max_queue=s.providers.ledger_max_queue,
            max_batch=s.providers.ledger_max_batch,
            registry=registry,
        )
        ledger.start()
        self.deps = ProvidersDeps(
            ctx=ctx,
            llm=llm,
            metrics=ProvidersMetrics(registry, ctx.db),
            catalog=catalog,
            budget_cache=budgets.BudgetCache(ctx.db, s.providers.budget_cache_ttl_s),
            ledger=ledger,
            upstreams=upstreams,
        )
        every = s.providers.catalog_refresh_s
        self._refresher = asyncio.create_task(self._refresh_catalog(every)) if every else None

    async def _refresh_catalog(self, every_s: float) -> None:
        """Keep the catalog fresh; a failed refresh keeps the old one and is logged."""
        while True:
            await asyncio.sleep(every_s)
            try:
                count = await self.deps.catalog.refresh(self.deps.llm)
                log.info("catalog_refreshed", models=count)
            except Exception as exc:  # the schedule must survive any upstream trouble
                log.warning("catalog_refresh_failed", error=repr(exc))

    async def shutdown(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
        await self.deps.ledger.stop()  # every queued usage row is written before we exit

    async def status_details(self) -> dict[str, Any]:
        def totals(s: Session) -> dict[str, Any]:
            calls, cost, tokens = s.exec(
                select(
                    func.count(),
                    func.coalesce(func.sum(UsageRecord.cost_usd), 0.0),
                    func.coalesce(func.sum(UsageRecord.total_tokens), 0),
                )
            ).one()
            return {"calls": calls, "cost_usd": round(cost, 6), "tokens": tokens}

        figures = await self.context.db.run(totals, write=False)
        return {
            "llm_mode": self.context.settings.llm_mode,
            "upstream": self.context.settings.llm_base_url,
            "catalog": {
                "models": len(self.deps.catalog.models),
                "source": self.deps.catalog.source,
            },
            **figures,
        }


def create_slice() -> ProvidersSlice:
    return ProvidersSlice()
