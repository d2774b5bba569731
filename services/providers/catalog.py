"""The providers slice's model catalog: kept in its database, seeded from the snapshot that
ships with openrouter_gateway, refreshed from the upstream's ``GET /models`` on demand and
on a schedule, and held in memory for pricing on the hot path."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from sqlmodel import Session, select

from openrouter_gateway import ModelPrice, OpenRouterClient, load_snapshot
from services.kit.database import SliceDatabase, after_commit
from services.kit.versions import bump_version
from services.providers.models import CatalogModel

MAX_MODELS = 5_000


class CatalogError(ValueError):
    """The upstream's catalog could not be used; nothing was changed."""


def _price(model: dict[str, Any]) -> ModelPrice:
    p = model.get("pricing") or {}
    try:
        price = ModelPrice(
            Decimal(str(p.get("prompt", "0"))),
            Decimal(str(p.get("completion", "0"))),
            Decimal(str(p.get("request", "0") or "0")),
        )
    except InvalidOperation as exc:
        raise CatalogError(f"model {model.get('id')!r}: pricing is not a number") from exc
    if min(price.prompt, price.completion, price.request) < 0:
        raise CatalogError(f"model {model.get('id')!r}: negative price")
    return price


def validate(models: list[Any]) -> dict[str, dict[str, Any]]:
    """Models by id, each with an id and parseable, non-negative prices."""
    if not isinstance(models, list) or not models:
        raise CatalogError("the catalog is empty or not a list")
    if len(models) > MAX_MODELS:
        raise CatalogError(f"the catalog has {len(models)} models, more than {MAX_MODELS}")
    out: dict[str, dict[str, Any]] = {}
    for m in models:
        if not isinstance(m, dict) or not isinstance(m.get("id"), str) or not m["id"]:
            raise CatalogError("a catalog entry has no id")
        if m.get("pricing") is not None:  # OpenRouter marks some router models unpriced
            _price(m)
        out[m["id"]] = m
    return out


CATALOG_REGISTRY = "providers.catalog"  # its row in kit_registry_versions


class Catalog:
    """Models and prices in memory; the database is the durable copy."""

    def __init__(self, db: SliceDatabase) -> None:
        self.db = db
        self.models: dict[str, dict[str, Any]] = {}
        self.prices: dict[str, ModelPrice] = {}
        self.source = "empty"
        self.updated_at: datetime | None = None

    def _install(self, models: dict[str, dict[str, Any]], source: str, when: datetime) -> None:
        self.models = models
        self.prices = {mid: _price(m) for mid, m in models.items() if m.get("pricing")}
        self.source, self.updated_at = source, when

    def load(self) -> None:
        """From the database; on first start, from the shipped snapshot."""
        with self.db.session() as session:
            rows = session.exec(select(CatalogModel)).all()
            if rows:
                newest = max(r.updated_at for r in rows)
                self._install({r.id: r.data for r in rows}, rows[0].source, newest)
                return
        self._store(validate(list(load_snapshot())), "snapshot")

    def _store(self, models: dict[str, dict[str, Any]], source: str) -> None:
        with self.db.session() as session:
            self._replace(session, models, source)

    async def refresh(self, client: OpenRouterClient) -> int:
        """Fetch the upstream's catalog, check it, replace ours in one transaction."""
        models = validate(await client.list_models())
        await self.db.run(lambda s: self._replace(s, models, "upstream"))
        return len(models)

    def _replace(self, session: Session, models: dict[str, dict[str, Any]], source: str) -> None:
        """Replace the stored catalog in the caller's unit; this process uses the new one
        once it is committed."""
        now = datetime.now(UTC)
        _replace(session, models, source, now)
        after_commit(session, partial(self._install, models, source, now))

    def price_of(self, model_id: str) -> ModelPrice | None:
        return self.prices.get(model_id)

    def cost_usd(self, model_id: str, prompt_tokens: int, completion_tokens: int) -> float:
        """USD of a call from catalog prices; 0.0 for an unknown model."""
        price = self.prices.get(model_id)
        if price is None:
            return 0.0
        return float(
            price.prompt * prompt_tokens + price.completion * completion_tokens + price.request
        )


def _replace(
    session: Session, models: dict[str, dict[str, Any]], source: str, now: datetime
) -> None:
    session.execute(CatalogModel.__table__.delete())  # type: ignore[attr-defined]
    bump_version(session, name=CATALOG_REGISTRY)  # the other replicas reload it
    session.add_all(
        CatalogModel(id=mid, data=m, source=source, updated_at=now) for mid, m in models.items()
    )
