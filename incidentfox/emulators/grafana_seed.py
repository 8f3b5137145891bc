"""The world the Grafana emulator starts with: a checkout incident twenty minutes old.

Checkout v2.3.1 was deployed at ``deploy_at``; from then on checkout's 5xx rate in prod is forty times
its baseline and its p99 latency six times, its error logs thirty times; a Grafana-managed alert on the
5xx rate fires five minutes later. The "Checkout" dashboard (uid ``checkout-overview``) shows it with
the variables ``datasource``, ``namespace`` and ``service``; a "Payments" dashboard stays quiet.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from incidentfox.emulators.grafana_query import SeededSeries

PROMETHEUS_UID = "prometheus-main"
LOKI_UID = "loki-main"
CHECKOUT_UID = "checkout-overview"
PAYMENTS_UID = "payments-api"
ERRORS_EXPR = (
    'sum by (service) (rate(http_requests_total{namespace="$namespace",service=~"$service",code=~"5.."}'
    "[$__rate_interval]))"
)
LATENCY_EXPR = (
    "histogram_quantile(0.99, sum by (le, service) "
    '(rate(http_request_duration_seconds_bucket{namespace="[[namespace]]",'
    'service=~"${service}"}[$__interval])))'
)
ERROR_LOGS_EXPR = (
    'sum by (level) (count_over_time({namespace="$namespace",app=~"$service"} |= "error" [$__interval]))'
)
SERVICES = ("checkout", "cart", "payments")


@dataclass(slots=True)
class GrafanaWorld:
    """What the emulator serves; tests may add to any of it."""

    deploy_at: datetime
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    """By uid: ``{"dashboard": model, "meta": meta}`` as ``GET /api/dashboards/uid/{uid}`` answers."""
    folders: list[dict[str, Any]] = field(default_factory=list)
    datasources: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    series: list[SeededSeries] = field(default_factory=list)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _rfc3339(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _panel(
    pid: int, title: str, datasource: dict[str, str], expr: str, y: int, **extra: Any
) -> dict[str, Any]:
    return {
        "id": pid,
        "type": "timeseries",
        "title": title,
        "datasource": datasource,
        "gridPos": {"h": 8, "w": 12, "x": 0, "y": y},
        "fieldConfig": {"defaults": {"unit": extra.pop("unit", "short")}, "overrides": []},
        "targets": [{"refId": "A", "datasource": datasource, "expr": expr, "range": True, **extra}],
    }


def _requests_panel(datasource: dict[str, str]) -> dict[str, Any]:
    """Two queries shown and a third hidden (``hide``), which Grafana does not run."""
    selector = 'http_requests_total{namespace="$namespace",service=~"$service"'
    panel = _panel(7, "Requests and errors", datasource, f"sum(rate({selector}}}[$__rate_interval]))", 17)
    panel["targets"] += [
        {"refId": "B", "expr": f'sum(rate({selector},code=~"5.."}}[$__rate_interval]))', "hide": False},
        {"refId": "C", "expr": f'sum(rate({selector},code="200"}}[$__rate_interval]))', "hide": True},
    ]
    return panel


def _checkout() -> dict[str, Any]:
    prometheus = {"type": "prometheus", "uid": "${datasource}"}
    loki = {"type": "loki", "uid": LOKI_UID}
    services = [{"text": "All", "value": "$__all", "selected": False}] + [
        {"text": s, "value": s, "selected": s == "checkout"} for s in SERVICES
    ]
    return {
        "id": 12,
        "uid": CHECKOUT_UID,
        "title": "Checkout",
        "tags": ["checkout", "prod", "slo"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 7,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {"text": "Prometheus", "value": PROMETHEUS_UID},
                },
                {
                    "name": "namespace",
                    "type": "query",
                    "datasource": prometheus,
                    "query": "label_values(kube_pod_info, namespace)",
                    "current": {"text": "prod", "value": "prod"},
                    "options": [],
                },
                {
                    "name": "service",
                    "type": "custom",
                    "multi": True,
                    "includeAll": True,
                    "query": ",".join(SERVICES),
                    "current": {"text": ["checkout"], "value": ["checkout"]},
                    "options": services,
                },
            ]
        },
        "annotations": {
            "list": [{"name": "Deploys", "datasource": {"type": "grafana", "uid": "-- Grafana --"}}]
        },
        "panels": [
            {"id": 1, "type": "row", "title": "Traffic", "collapsed": False, "panels": []},
            _panel(2, "5xx rate", prometheus, ERRORS_EXPR, 1, legendFormat="{{service}}", unit="reqps"),
            _panel(
                3, "p99 latency", {"type": "prometheus", "uid": PROMETHEUS_UID}, LATENCY_EXPR, 9, unit="s"
            ),
            _requests_panel(prometheus),
            {
                "id": 4,
                "type": "text",
                "title": "Runbook",
                "options": {"content": "See the checkout runbook."},
            },
            {
                "id": 5,
                "type": "row",
                "title": "Logs",
                "collapsed": True,
                "panels": [_panel(6, "Error log lines", loki, ERROR_LOGS_EXPR, 18)],
            },
        ],
    }


def _payments() -> dict[str, Any]:
    ds = {"type": "prometheus", "uid": PROMETHEUS_UID}
    expr = 'sum(rate(http_requests_total{namespace="prod",service="payments"}[5m]))'
    return {
        "id": 13,
        "uid": PAYMENTS_UID,
        "title": "Payments API",
        "tags": ["payments", "prod"],
        "schemaVersion": 39,
        "version": 2,
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": []},
        "panels": [_panel(1, "Requests", ds, expr, 0, unit="reqps")],
    }


def _meta(model: dict[str, Any], slug: str, deploy_at: datetime) -> dict[str, Any]:
    return {
        "type": "db",
        "canSave": False,
        "canEdit": False,
        "canAdmin": False,
        "canStar": True,
        "canDelete": False,
        "slug": slug,
        "url": f"/d/{model['uid']}/{slug}",
        "expires": "0001-01-01T00:00:00Z",
        "created": _rfc3339(deploy_at - timedelta(days=90)),
        "updated": _rfc3339(deploy_at - timedelta(days=3)),
        "updatedBy": "sre-bot",
        "createdBy": "admin",
        "version": model["version"],
        "hasAcl": False,
        "isFolder": False,
        "folderId": 3,
        "folderUid": "services",
        "folderTitle": "Services",
        "folderUrl": "/dashboards/f/services/services",
        "provisioned": False,
    }


def _datasources() -> list[dict[str, Any]]:
    common = {"orgId": 1, "access": "proxy", "database": "", "readOnly": False, "typeLogoUrl": ""}
    return [
        {
            **common,
            "id": 1,
            "uid": PROMETHEUS_UID,
            "name": "Prometheus",
            "type": "prometheus",
            "url": "http://prometheus.monitoring:9090",
            "user": "",
            "basicAuth": True,
            "basicAuthUser": "grafana",
            "isDefault": True,
            "jsonData": {"httpMethod": "POST", "timeInterval": "15s"},
            "secureJsonFields": {"basicAuthPassword": True},
        },
        {
            **common,
            "id": 2,
            "uid": LOKI_UID,
            "name": "Loki",
            "type": "loki",
            "url": "http://loki-gateway.monitoring",
            "user": "",
            "basicAuth": False,
            "isDefault": False,
            "jsonData": {"maxLines": 1000},
            "secureJsonFields": {"httpHeaderValue1": True},
        },
    ]


def _series() -> list[SeededSeries]:
    series = []
    for namespace in ("prod", "staging"):
        for service in SERVICES:
            incident = namespace == "prod" and service == "checkout"
            base = {"namespace": namespace, "service": service}
            series.append(SeededSeries(PROMETHEUS_UID, "http_requests_total", {**base, "code": "200"}, 50.0))
            for code in ("500", "503"):
                spike = 40.0 if incident else 1.0
                series.append(
                    SeededSeries(PROMETHEUS_UID, "http_requests_total", {**base, "code": code}, 0.1, spike)
                )
            latency = 6.0 if incident else 1.0
            series.append(
                SeededSeries(PROMETHEUS_UID, "http_request_duration_seconds_bucket", base, 0.25, latency)
            )
            logs = {"namespace": namespace, "app": service}
            series.append(
                SeededSeries(LOKI_UID, "", {**logs, "level": "error"}, 2.0, 30.0 if incident else 1.0)
            )
            series.append(SeededSeries(LOKI_UID, "", {**logs, "level": "info"}, 120.0))
    return series


def _alerts(deploy_at: datetime) -> list[dict[str, Any]]:
    def alert(
        name: str, labels: dict[str, str], summary: str, starts: datetime, state: str
    ) -> dict[str, Any]:
        silenced = ["9f1c7c1e-silence"] if state == "suppressed" else []
        return {
            "labels": {
                "alertname": name,
                "grafana_folder": "Services",
                "__alert_rule_uid__": f"rule-{name}",
                **labels,
            },
            "annotations": {
                "summary": summary,
                "__dashboardUid__": CHECKOUT_UID,
                "__panelId__": "2",
                "__value_string__": "[ var='A' labels={service=checkout} value=8.1 ]",
            },
            "startsAt": _rfc3339(starts),
            "endsAt": _rfc3339(starts + timedelta(days=1)),
            "updatedAt": _rfc3339(starts + timedelta(minutes=1)),
            "fingerprint": f"{zlib.crc32(name.encode()):016x}",
            "generatorURL": f"/alerting/grafana/rule-{name}/view?orgId=1",
            "receivers": [{"name": "slack-sre"}],
            "status": {"state": state, "silencedBy": silenced, "inhibitedBy": []},
        }

    return [
        alert(
            "CheckoutHigh5xxRate",
            {"namespace": "prod", "service": "checkout", "severity": "critical"},
            "checkout 5xx rate above 1 req/s",
            deploy_at + timedelta(minutes=5),
            "active",
        ),
        alert(
            "CartSlowRequests",
            {"namespace": "staging", "service": "cart", "severity": "warning"},
            "cart p99 latency above 1s",
            deploy_at - timedelta(hours=2),
            "suppressed",
        ),
    ]


def seeded_world(now: datetime) -> GrafanaWorld:
    deploy_at = now - timedelta(minutes=20)
    world = GrafanaWorld(deploy_at=deploy_at)
    for model, slug in ((_checkout(), "checkout"), (_payments(), "payments-api")):
        world.dashboards[model["uid"]] = {"dashboard": model, "meta": _meta(model, slug, deploy_at)}
    world.folders.append(
        {"id": 3, "uid": "services", "title": "Services", "url": "/dashboards/f/services/services"}
    )
    world.datasources = _datasources()
    world.annotations = [
        {
            "id": 101,
            "alertId": 0,
            "dashboardId": 0,
            "dashboardUID": "",
            "panelId": 0,
            "userId": 4,
            "login": "ci-bot",
            "newState": "",
            "prevState": "",
            "time": _ms(deploy_at),
            "timeEnd": _ms(deploy_at),
            "text": "Deployed checkout v2.3.1 (image ghcr.io/acme/checkout:2.3.1)",
            "tags": ["deploy", "checkout", "prod"],
            "data": {},
        },
        {
            "id": 100,
            "alertId": 0,
            "dashboardId": 13,
            "dashboardUID": PAYMENTS_UID,
            "panelId": 1,
            "userId": 2,
            "login": "alice",
            "newState": "",
            "prevState": "",
            "time": _ms(now - timedelta(hours=3)),
            "timeEnd": _ms(now - timedelta(hours=3)),
            "text": "Payments provider maintenance window",
            "tags": ["maintenance"],
            "data": {},
        },
    ]
    world.alerts = _alerts(deploy_at)
    world.series = _series()
    return world
