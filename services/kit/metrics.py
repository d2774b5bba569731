"""Prometheus metrics of one service: HTTP traffic per route template, plus its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class ServiceMetrics:
    """One registry per app, so tests and several apps in one process never collide."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests handled",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to handle a request",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "http_requests_in_flight", "Requests being handled now", registry=self.registry
        )
        self.errors_total = 0  # 5xx responses, for /status
        self.requests_total = 0
        info = Gauge("service_info", "Service identity", ["service"], registry=self.registry)
        info.labels(service=service).set(1)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        self.requests_total += 1
        # /ready answering 503 while a dependency starts is the probe working, not a fault.
        if status >= 500 and route != "/ready":
            self.errors_total += 1

    def render(self) -> bytes:
        return generate_latest(self.registry)
