"""What the providers routes need, built at start-up (kept apart from slice.py: no cycle)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from openrouter_gateway import OpenRouterClient
from services.kit.slice_base import SliceContext
from services.providers.budgets import BudgetCache
from services.providers.catalog import Catalog
from services.providers.ledger import LedgerWriter
from services.providers.metrics import ProvidersMetrics
from services.providers.upstreams import UpstreamRegistry


@dataclass
class ProvidersDeps:
    ctx: SliceContext
    llm: OpenRouterClient
    metrics: ProvidersMetrics
    catalog: Catalog
    budget_cache: BudgetCache
    ledger: LedgerWriter
    upstreams: UpstreamRegistry

    def reload_upstreams(self) -> None:
        """Rebuild the upstream clients from the database (after a change was committed)."""
        with self.ctx.db.session(write=False) as session:
            self.upstreams.load(session)


async def get_providers_deps(request: Request) -> ProvidersDeps:
    deps: ProvidersDeps = request.app.state.slice.deps
    return deps


ProvidersDep = Annotated[ProvidersDeps, Depends(get_providers_deps)]
