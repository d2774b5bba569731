"""The model catalog: a snapshot of OpenRouter's ``GET /api/v1/models`` shipped with the
project (prices are strings in USD per token, as OpenRouter sends them)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class ModelPrice:
    prompt: Decimal
    completion: Decimal
    request: Decimal


@lru_cache(maxsize=1)
def load_snapshot() -> tuple[dict[str, Any], ...]:
    """The shipped catalog's ``data`` list."""
    text = resources.files("openrouter_gateway").joinpath("data/models.json").read_text("utf-8")
    return tuple(json.loads(text)["data"])


@lru_cache(maxsize=1)
def _prices() -> dict[str, ModelPrice]:
    out = {}
    for model in load_snapshot():
        p = model["pricing"]
        out[model["id"]] = ModelPrice(
            Decimal(p["prompt"]), Decimal(p["completion"]), Decimal(p.get("request", "0"))
        )
    return out


def price_of(model_id: str) -> ModelPrice | None:
    """Prices of a model in the snapshot, or None if it is not there."""
    return _prices().get(model_id)


def compute_cost(model_id: str, prompt_tokens: int, completion_tokens: int) -> float:
    """USD for a call from catalog prices; 0.0 for a model the catalog does not know."""
    price = price_of(model_id)
    if price is None:
        return 0.0
    return float(
        price.prompt * prompt_tokens + price.completion * completion_tokens + price.request
    )
