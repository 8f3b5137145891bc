"""The process-wide Prometheus collectors (ADR-043): acks, runs, Slack API calls, tool calls, model
calls and active sandboxes, recorded where they happen, with no registry passed down to them.

They live on ``PROCESS_METRICS.registry``. Each app's ``HttpMetrics`` registers the same collectors on
its own registry as well, so ``/metrics`` of every role (bot, worker, all) shows them beside the HTTP
and queue metrics, in one exposition. Several apps in one process (tests) share them: a test reads a
sample before and after (``PROCESS_METRICS.registry.get_sample_value``) and asserts the difference.

Recording is a dict lookup and an increment: labelled children are cached, as ``HttpMetrics.observe``
does, which keeps the ack path cheap. Every label value comes from a closed set in the code (ack
sources, run statuses, toolsets and their tools, providers) or is checked first (Slack method names),
so no caller can grow a new series per request.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from incidentfox.agents.queue import SHARED_STREAM

ACK_SOURCES = ("slack_event", "slack_command", "slack_action", "pagerduty", "github", "incidentio")
"""Where an acknowledged delivery came from: the ``source`` label of ``incidentfox_ack_seconds``."""

SANDBOX_BACKENDS = ("local", "kubernetes", "unsafe-local")
"""Always reported, at 0 when this process holds none, so a dashboard never sees the series vanish."""

ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
TOOL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
MODEL_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)


def tenancy_of(stream: str) -> str:
    """The tenancy label of a run queued on ``stream``: ``shared``, or ``dedicated`` (a team's own)."""
    return "shared" if stream == SHARED_STREAM else "dedicated"


class SandboxHolder(Protocol):
    """Something that holds sandboxes in this process (``SreSessions``): how many, by backend."""

    def active_by_backend(self) -> Mapping[str, int]: ...


class _Children:
    """The labelled children of one metric, created once per label tuple."""

    __slots__ = ("_cache", "_metric")

    def __init__(self, metric: Counter | Histogram) -> None:
        self._metric = metric
        self._cache: dict[tuple[str, ...], Any] = {}

    def get(self, *labels: str) -> Any:
        child = self._cache.get(labels)
        if child is None:
            child = self._cache[labels] = self._metric.labels(*labels)
        return child


class ActiveSandboxes:
    """``incidentfox_sandboxes_active{backend}``, read from the holders when ``/metrics`` is scraped.

    A count read at scrape time cannot drift the way increments and decrements on every code path
    could; holders are weakly referenced, so one that is gone stops counting."""

    NAME = "incidentfox_sandboxes_active"
    HELP = "Sandboxes with a live SRE agent session in this process"

    def __init__(self) -> None:
        self._holders: weakref.WeakSet[SandboxHolder] = weakref.WeakSet()

    def track(self, holder: SandboxHolder) -> None:
        self._holders.add(holder)

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self.NAME, self.HELP, labels=["backend"])

    def collect(self) -> Iterator[Metric]:
        totals = dict.fromkeys(SANDBOX_BACKENDS, 0)
        for holder in list(self._holders):
            for backend, count in holder.active_by_backend().items():
                totals[backend] = totals.get(backend, 0) + count
        family = GaugeMetricFamily(self.NAME, self.HELP, labels=["backend"])
        for backend, count in sorted(totals.items()):
            family.add_metric([backend], count)
        yield family


class ProcessMetrics:
    """Every process-wide collector, and one cheap method per thing that happened."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._acks = Histogram(
            "incidentfox_ack_seconds",
            "Time from receiving a delivery to acknowledging it (Slack, PagerDuty, GitHub, incident.io)",
            ["source"],
            buckets=ACK_BUCKETS,
            registry=None,
        )
        self._runs_started = Counter(
            "incidentfox_runs_started",
            "Runs a worker started investigating",
            ["source", "tenancy"],
            registry=None,
        )
        self._runs_finished = Counter(
            "incidentfox_runs",
            "Runs that ended, by the status recorded in the run store",
            ["status", "source", "tenancy"],
            registry=None,
        )
        self._slack_calls = Counter(
            "incidentfox_slack_api_calls",
            "Slack Web API requests (each retry counts), by outcome: ok, error (ok: false), "
            "ratelimited (429), server_error (5xx), unreachable",
            ["method", "outcome"],
            registry=None,
        )
        self._slack_ratelimited = Counter(
            "incidentfox_slack_api_ratelimited",
            "Slack Web API answers 429, including those retried afterwards",
            ["method"],
            registry=None,
        )
        self._tool_calls = Counter(
            "incidentfox_tool_calls",
            "Tool calls by toolset, tool and result status (ok, error, no_data, approval_required)",
            ["toolset", "tool", "outcome"],
            registry=None,
        )
        self._tool_seconds = Histogram(
            "incidentfox_tool_seconds",
            "Time a tool took to run (connecting its client included; waiting for approval not)",
            ["toolset"],
            buckets=TOOL_BUCKETS,
            registry=None,
        )
        self._model_seconds = Histogram(
            "incidentfox_model_seconds",
            "Time of one model call, to its last streamed token",
            ["provider"],
            buckets=MODEL_BUCKETS,
            registry=None,
        )
        self._model_tokens = Counter(
            "incidentfox_model_tokens",
            "Model tokens by provider and kind (input includes cached prompt tokens)",
            ["provider", "kind"],
            registry=None,
        )
        self.sandboxes = ActiveSandboxes()
        self.collectors = (
            self._acks,
            self._runs_started,
            self._runs_finished,
            self._slack_calls,
            self._slack_ratelimited,
            self._tool_calls,
            self._tool_seconds,
            self._model_seconds,
            self._model_tokens,
            self.sandboxes,
        )
        self.register_on(self.registry)
        self._ack = _Children(self._acks)
        self._started = _Children(self._runs_started)
        self._finished = _Children(self._runs_finished)
        self._slack = _Children(self._slack_calls)
        self._throttled = _Children(self._slack_ratelimited)
        self._tool = _Children(self._tool_calls)
        self._tool_time = _Children(self._tool_seconds)
        self._model_time = _Children(self._model_seconds)
        self._tokens = _Children(self._model_tokens)

    def register_on(self, registry: CollectorRegistry) -> None:
        """Expose these collectors on ``registry`` too (each app's, beside its HTTP metrics)."""
        for collector in self.collectors:
            registry.register(collector)

    def ack(self, source: str, seconds: float) -> None:
        """A delivery from ``source`` (one of ``ACK_SOURCES``) was acknowledged after ``seconds``."""
        self._ack.get(source).observe(seconds)

    def run_started(self, source: str, tenancy: str) -> None:
        """A worker started investigating a run (``Run.source``; ``tenancy_of(QueuedRun.stream)``)."""
        self._started.get(source, tenancy).inc()

    def run_finished(self, status: str, source: str, tenancy: str) -> None:
        """A run ended with ``status`` as ``RunStore.finish`` writes it (succeeded, failed, interrupted)."""
        self._finished.get(status, source, tenancy).inc()

    def slack_call(self, method: str, outcome: str) -> None:
        self._slack.get(method, outcome).inc()
        if outcome == "ratelimited":
            self._throttled.get(method).inc()

    def tool_call(self, toolset: str, tool: str, outcome: str) -> None:
        self._tool.get(toolset, tool, outcome).inc()

    def tool_seconds(self, toolset: str, seconds: float) -> None:
        self._tool_time.get(toolset).observe(seconds)

    def model_call(
        self, provider: str, seconds: float, *, input_tokens: int = 0, output_tokens: int = 0
    ) -> None:
        """One model call of ``provider``; tokens are counted when the answer reported them."""
        self._model_time.get(provider).observe(seconds)
        if input_tokens > 0:
            self._tokens.get(provider, "input").inc(input_tokens)
        if output_tokens > 0:
            self._tokens.get(provider, "output").inc(output_tokens)


PROCESS_METRICS = ProcessMetrics()
"""The one set of process-wide collectors. Record through its methods; never build a second one."""
