"""The providers slice's own Prometheus metrics, in the app's registry."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.kit.database import SliceDatabase
from services.kit.metrics import LATENCY_BUCKETS


class ProvidersMetrics:
    def __init__(self, registry: CollectorRegistry, db: SliceDatabase) -> None:
        registry.register(BudgetCollector(db))
        self.calls = Counter(
            "llm_calls_total", "Upstream LLM calls", ["model", "outcome"], registry=registry
        )
        self.tokens = Counter(
            "llm_tokens_total", "Tokens used", ["model", "kind"], registry=registry
        )
        self.cost = Counter("llm_cost_usd_total", "Spend in USD", ["model"], registry=registry)
        self.latency = Histogram(
            "llm_call_duration_seconds",
            "Upstream call latency",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

        self.ttft = Histogram(
            "llm_time_to_first_token_seconds",
            "Time to the first streamed token",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "llm_retries_total", "Upstream attempts beyond the first", ["model"], registry=registry
        )

    def observe(
        self,
        *,
        model: str,
        outcome: str,
        prompt: int = 0,
        completion: int = 0,
        cost: float = 0.0,
        seconds: float | None = None,
        ttft_seconds: float | None = None,
        retries: int = 0,
    ) -> None:
        self.calls.labels(model, outcome).inc()
        if prompt:
            self.tokens.labels(model, "prompt").inc(prompt)
        if completion:
            self.tokens.labels(model, "completion").inc(completion)
        if cost:
            self.cost.labels(model).inc(cost)
        if seconds is not None:
            self.latency.labels(model).observe(seconds)
        if ttft_seconds is not None:
            self.ttft.labels(model).observe(ttft_seconds)
        if retries:
            self.retries.labels(model).inc(retries)


class BudgetCollector(Collector):
    """Each budget's current window, read from the database at scrape time."""

    def __init__(self, db: SliceDatabase) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        from services.providers import budgets

        labels = ["budget_id", "scope", "subject", "window"]
        remaining = GaugeMetricFamily(
            "llm_budget_remaining_usd", "What a budget has left in its window", labels=labels
        )
        spent = GaugeMetricFamily(
            "llm_budget_spent_usd", "Settled spend in the window", labels=labels
        )
        with self.db.session() as session:
            for b in budgets.list_budgets(session=session):
                key = [b.id, b.scope, b.subject or "", b.window]
                remaining.add_metric(key, b.remaining_usd)
                spent.add_metric(key, b.spent_usd)
        yield remaining
        yield spent
