"""A checkout incident as Datadog would hold it: a 5xx spike on checkout's ``POST /api/checkout`` that
began 15 minutes ago, three minutes after a deploy, while the payment gateway times out.

* metrics: ``trace.http.request.hits`` and ``trace.http.request.errors`` per service and resource
  every minute for the last hour (checkout's errors jump from 0-1 to 20-29 a minute), the custom count
  ``checkout.payment.declined``, and ``system.cpu.user`` for checkout's host;
* logs: 40 ``payment declined for order ord_…: upstream timeout after …ms`` errors from checkout, 60
  info lines, 5 payments warnings;
* spans: 30 errored ``POST /api/checkout`` spans (``UpstreamTimeout``, about 3 s), 60 fast ones, 40
  ``GET /api/cart`` and 20 payments ``charge`` spans;
* monitors: checkout's 5xx monitor in Alert since 12 minutes ago, its p95 latency monitor in Warn, a
  payments monitor that is OK;
* events: the deploy of checkout v2.14.0 (18 minutes ago) and a feature-flag change (40 minutes ago);
* hosts: checkout's two pods, one of which stopped reporting 25 minutes ago, and payments' pod.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from incidentfox.emulators.datadog_store import DatadogStore

HOST = "checkout-7d9f8-x2k4p"
CHECKOUT = "POST /api/checkout"
DECLINED = "payment declined for order ord_{n}: upstream timeout after {ms}ms"
ALERT_MONITOR_ID = 4201
SPIKE_MINUTES = 15


def _minutes(now: datetime, count: int) -> list[datetime]:
    start = now.replace(second=0, microsecond=0)
    return [start - timedelta(minutes=m) for m in range(count, -1, -1)]


def _metrics(store: DatadogStore, now: datetime) -> None:
    minutes = _minutes(now, 60)
    spike = now - timedelta(minutes=SPIKE_MINUTES)
    checkout = ["env:prod", "service:checkout", "resource_name:post_/api/checkout"]
    cart = ["env:prod", "service:checkout", "resource_name:get_/api/cart"]
    payments = ["env:prod", "service:payments", "resource_name:charge"]
    errors = [(at, 20.0 + i % 10 if at >= spike else float(i % 2)) for i, at in enumerate(minutes)]
    store.add_metric("trace.http.request.errors", checkout, errors)
    store.add_metric("trace.http.request.errors", cart, [(at, 0.0) for at in minutes])
    store.add_metric(
        "trace.http.request.errors", payments, [(at, float(i % 3 == 0)) for i, at in enumerate(minutes)]
    )
    store.add_metric(
        "trace.http.request.hits", checkout, [(at, 120.0 + i % 7) for i, at in enumerate(minutes)]
    )
    store.add_metric("trace.http.request.hits", cart, [(at, 300.0 + i % 5) for i, at in enumerate(minutes)])
    store.add_metric("trace.http.request.hits", payments, [(at, 90.0) for at in minutes])
    store.add_metric(
        "checkout.payment.declined",
        ["env:prod", "service:checkout"],
        [(at, 18.0 if at >= spike else 1.0) for at in minutes],
    )
    store.add_metric(
        "system.cpu.user", [f"host:{HOST}", "env:prod"], [(at, 35.0 + i % 4) for i, at in enumerate(minutes)]
    )


def _logs(store: DatadogStore, now: datetime) -> None:
    tags = ["env:prod", "version:2.14.0"]
    for i in range(40):
        store.add_log(
            now - timedelta(seconds=20 + 20 * i),
            DECLINED.format(n=1000 + i, ms=3000 + i),
            service="checkout",
            status="error",
            attributes={
                "http": {"status_code": 502, "method": "POST", "url_details": {"path": "/api/checkout"}},
                "error": {
                    "kind": "UpstreamTimeout",
                    "stack": "at PaymentClient.charge(PaymentClient.java:88)",
                },
                "order_id": f"ord_{1000 + i}",
                "trace_id": f"71{i:016d}",
            },
            host=HOST,
            tags=tags,
        )
    for i in range(60):
        store.add_log(
            now - timedelta(seconds=15 + 30 * i),
            f"GET /api/cart 200 {10 + i}ms",
            service="checkout",
            attributes={"http": {"status_code": 200, "method": "GET"}},
            host=HOST,
            tags=tags,
        )
    for i in range(5):
        store.add_log(
            now - timedelta(seconds=40 + 180 * i),
            f"retrying charge ch_{i} against gateway eu-1",
            service="payments",
            status="warn",
            host="payments-55b6c-q9r7t",
            tags=["env:prod"],
        )


def _spans(store: DatadogStore, now: datetime) -> None:
    timeout = {"type": "UpstreamTimeout", "message": "payment gateway did not answer within 3000ms"}
    for i in range(30):
        store.add_span(
            now - timedelta(seconds=25 + 25 * i),
            service="checkout",
            resource_name=CHECKOUT,
            duration_ms=3000 + 10 * i,
            trace_id=f"71{i:016d}",
            host=HOST,
            error=timeout,
            http_status=502,
        )
    for i in range(60):
        store.add_span(
            now - timedelta(seconds=12 + 14 * i),
            service="checkout",
            resource_name=CHECKOUT,
            duration_ms=100 + i,
            trace_id=f"72{i:016d}",
            host=HOST,
            http_status=200,
        )
    for i in range(40):
        store.add_span(
            now - timedelta(seconds=10 + 20 * i),
            service="checkout",
            resource_name="GET /api/cart",
            duration_ms=20 + i % 10,
            trace_id=f"73{i:016d}",
            host=HOST,
            http_status=200,
        )
    for i in range(20):
        store.add_span(
            now - timedelta(seconds=30 + 40 * i),
            service="payments",
            resource_name="charge",
            duration_ms=80,
            trace_id=f"74{i:016d}",
            host="payments-55b6c-q9r7t",
        )


def _monitors(store: DatadogStore, now: datetime) -> None:
    created = (now - timedelta(days=90)).isoformat()
    triggered = int((now - timedelta(minutes=12)).timestamp())
    store.add_monitor(
        {
            "id": ALERT_MONITOR_ID,
            "name": "[checkout] 5xx errors are high on prod",
            "type": "query alert",
            "query": "sum(last_5m):sum:trace.http.request.errors{service:checkout,env:prod}.as_count() > 20",
            "message": "Checkout is failing requests with 5xx. Check the payment gateway first.\n"
            "Runbook: https://wiki.example.com/runbooks/checkout-5xx @pagerduty-checkout",
            "tags": ["service:checkout", "team:payments", "env:prod"],
            "overall_state": "Alert",
            "priority": 1,
            "multi": False,
            "created": created,
            "modified": created,
            "creator": {"email": "sre@example.com", "handle": "sre@example.com", "name": "SRE"},
        },
        [{"name": "*", "status": "Alert", "last_triggered_ts": triggered, "last_notified_ts": triggered}],
    )
    store.add_monitor(
        {
            "id": ALERT_MONITOR_ID + 1,
            "name": "[checkout] p95 latency above 2s",
            "type": "query alert",
            "query": "avg(last_10m):p95:trace.http.request{service:checkout,env:prod} > 2",
            "message": "Checkout p95 latency is high.",
            "tags": ["service:checkout", "env:prod"],
            "overall_state": "Warn",
            "priority": 3,
            "multi": False,
            "created": created,
            "modified": created,
        },
        [{"name": "*", "status": "Warn", "last_triggered_ts": triggered + 120}],
    )
    store.add_monitor(
        {
            "id": ALERT_MONITOR_ID + 2,
            "name": "[payments] charge errors",
            "type": "log alert",
            "query": 'logs("service:payments status:error").index("*").rollup("count").last("5m") > 10',
            "message": "Payments is logging errors.",
            "tags": ["service:payments", "env:prod"],
            "overall_state": "OK",
            "multi": False,
            "created": created,
            "modified": created,
        },
        [{"name": "*", "status": "OK", "last_resolved_ts": triggered - 3600}],
    )


def _events(store: DatadogStore, now: datetime) -> None:
    store.add_event(
        {
            "title": "Deployed checkout v2.14.0 to prod",
            "text": "Deploy #812 by jane@example.com: switch payment client to the new gateway pool",
            "date_happened": int((now - timedelta(minutes=SPIKE_MINUTES + 3)).timestamp()),
            "tags": ["service:checkout", "env:prod", "version:2.14.0", "deployment"],
            "source_type_name": "github",
            "alert_type": "info",
            "priority": "normal",
            "host": HOST,
        }
    )
    store.add_event(
        {
            "title": "Feature flag payments.new_gateway turned on for 50% of prod",
            "text": "Changed by bob@example.com",
            "date_happened": int((now - timedelta(minutes=40)).timestamp()),
            "tags": ["service:payments", "env:prod", "config_change"],
            "source_type_name": "launchdarkly",
            "alert_type": "info",
            "priority": "normal",
        }
    )


def _hosts(store: DatadogStore, now: datetime) -> None:
    reported = int(now.timestamp())
    tags = {"Datadog": ["env:prod", "service:checkout"], "Kubernetes": ["kube_namespace:prod"]}
    store.add_host(
        {
            "name": HOST,
            "up": True,
            "is_muted": False,
            "last_reported_time": reported - 20,
            "apps": ["agent", "ntp", "checkout"],
            "sources": ["agent", "kubernetes"],
            "tags_by_source": tags,
            "metrics": {"cpu": 37.5, "iowait": 0.4, "load": 1.2},
        }
    )
    store.add_host(
        {
            "name": "checkout-7d9f8-b7m2q",
            "up": False,
            "is_muted": False,
            "last_reported_time": reported - 1500,
            "apps": ["agent", "checkout"],
            "sources": ["agent", "kubernetes"],
            "tags_by_source": tags,
            "metrics": {"cpu": 99.1, "iowait": 12.0, "load": 8.5},
        }
    )
    store.add_host(
        {
            "name": "payments-55b6c-q9r7t",
            "up": True,
            "is_muted": False,
            "last_reported_time": reported - 15,
            "apps": ["agent", "payments"],
            "sources": ["agent"],
            "tags_by_source": {"Datadog": ["env:prod", "service:payments"]},
            "metrics": {"cpu": 12.0, "iowait": 0.1, "load": 0.3},
        }
    )


def seed_checkout_incident(store: DatadogStore, now: datetime) -> None:
    """Fill ``store`` with the checkout incident described in this module's docstring."""
    _metrics(store, now)
    _logs(store, now)
    _spans(store, now)
    _monitors(store, now)
    _events(store, now)
    _hosts(store, now)
