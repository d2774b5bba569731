"""The providers slice: RefactorBot's LLM gateway."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import anyio
import structlog
from fastapi import APIRouter
from sqlalchemy import MetaData, func
from sqlmodel import Session, select

from services.kit.lease import LeasedSchedule
from services.kit.slice_base import AtomicSlice, SliceContext
from services.kit.versions import SharedVersion
from services.providers import budgets
from services.providers.catalog import CATALOG_REGISTRY, Catalog
from services.providers.deps import ProvidersDeps
from services.providers.ledger import LedgerWriter
from services.providers.metrics import ProvidersMetrics
from services.providers.models import ProvidersBase, UsageRecord
from services.providers.routes import router
from services.providers.upstreams import UPSTREAMS_REGISTRY, UpstreamRegistry, make_client

log = structlog.get_logger("providers")


class ProvidersSlice(AtomicSlice):
    name = "providers"
    _refresher: LeasedSchedule | None = None
    _watch: asyncio.Task[None] | None = None

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
        # replicas share the catalog and the upstreams: versions noticed, then reloaded
        recheck_s = s.replicas.registry_recheck_s
        self._versions = {
            CATALOG_REGISTRY: SharedVersion(CATALOG_REGISTRY, recheck_s=recheck_s),
            UPSTREAMS_REGISTRY: SharedVersion(UPSTREAMS_REGISTRY, recheck_s=recheck_s),
        }
        await ctx.db.run(self._moved, write=False)  # the versions of what is loaded below
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
        if every:  # one replica of the fleet fetches it; the others reload it
            self._refresher = LeasedSchedule(ctx.db, "providers.catalog", every, self._refresh)
            self._refresher.start()
        self._watch = asyncio.create_task(self._watch_shared(max(recheck_s, 0.05)))

    async def _refresh(self) -> None:
        """Keep the catalog fresh; a failed refresh keeps the old one and is logged."""
        try:
            count = await self.deps.catalog.refresh(self.deps.llm)
            log.info("catalog_refreshed", models=count)
        except Exception as exc:  # the schedule must survive any upstream trouble
            log.warning("catalog_refresh_failed", error=repr(exc))

    def _moved(self, session: Session) -> list[str]:
        """The shared registries another replica changed (their versions noted)."""
        moved = []
        for name, version in self._versions.items():
            now = version.moved(session)
            if now is not None:
                version.loaded = now
                moved.append(name)
        return moved

    async def _watch_shared(self, every_s: float) -> None:
        """Reload the catalog or the upstreams when another replica changed them (one
        primary-key read each per ``every_s``, off the request path)."""
        while True:
            await asyncio.sleep(every_s)
            try:
                moved = await self.context.db.run(self._moved, write=False)
                if CATALOG_REGISTRY in moved:
                    await anyio.to_thread.run_sync(self.deps.catalog.load)
                if UPSTREAMS_REGISTRY in moved:
                    await self.context.db.run(self.deps.upstreams.load, write=False)
            except Exception:
                log.exception("shared_registry_reload_failed")

    async def shutdown(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._refresher is not None:
            await self._refresher.stop()
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
