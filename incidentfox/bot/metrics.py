"""Prometheus metrics: one registry per app, so several apps in one process (tests) never collide.

The app's registry holds its HTTP and queue metrics and, registered on it as well, the process-wide
collectors of ``incidentfox.observability.metrics`` (acks, runs, Slack calls, tools, models,
sandboxes): one scrape of ``/metrics`` shows both (ADR-043)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from incidentfox.observability.metrics import PROCESS_METRICS

ACK_SOURCE = web.RequestKey("ack_source", str)
"""Set by a route that acknowledges a delivery (``ACK_SOURCES``): the edge middleware then records
the request's latency as that source's ack, when the answer is a 2xx."""


class Backlog(Protocol):
    @property
    def waiting(self) -> int: ...

    @property
    def pending(self) -> int: ...

    @property
    def oldest_age_s(self) -> float: ...


QueueDepths = Callable[[], Awaitable[Mapping[str, Backlog]]]
"""Each stream's backlog, read when ``/metrics`` is scraped."""


class HttpMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        PROCESS_METRICS.register_on(self.registry)
        self.requests = Counter(
            "incidentfox_http_requests_total",
            "HTTP requests",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "incidentfox_http_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.queue_depths: QueueDepths | None = None
        self.queue_waiting = Gauge(
            "incidentfox_queue_waiting",
            "Runs queued and not yet delivered",
            ["stream"],
            registry=self.registry,
        )
        self.queue_pending = Gauge(
            "incidentfox_queue_pending", "Runs delivered and not yet done", ["stream"], registry=self.registry
        )
        self.queue_oldest = Gauge(
            "incidentfox_queue_oldest_age_seconds",
            "Age of the oldest queued or undone run",
            ["stream"],
            registry=self.registry,
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(route, method, str(status)), self.latency.labels(route))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    async def handler(self, _request: web.Request) -> web.Response:
        if self.queue_depths is not None:
            try:
                depths = await self.queue_depths()
            except ConnectionError:
                depths = {}
            for stream, depth in depths.items():
                self.queue_waiting.labels(stream).set(depth.waiting)
                self.queue_pending.labels(stream).set(depth.pending)
                self.queue_oldest.labels(stream).set(depth.oldest_age_s)
        response = web.Response(body=generate_latest(self.registry))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response
