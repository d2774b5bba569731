"""The providers slice's own Prometheus metrics, in the app's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from services.kit.metrics import LATENCY_BUCKETS


class ProvidersMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
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

    def observe(
        self,
        *,
        model: str,
        outcome: str,
        prompt: int = 0,
        completion: int = 0,
        cost: float = 0.0,
        seconds: float | None = None,
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
