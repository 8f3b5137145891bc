"""A pod failing its probe because a service it calls is down: the dependency its log names is found,
linked, ranked as the cause when the question names the pod's workload, and said so in the RCA."""

from __future__ import annotations

from typing import Any

import pytest

from incidentfox.agents.analyzers import Finding, build_rca
from incidentfox.agents.analyzers.dependencies import link_dependencies, services_named
from incidentfox.agents.rca import Evidence

FATAL = 'level=fatal msg="psp client: environment variable PSP_API_KEY is missing"'
REFUSED = "readiness check failed: cannot reach payments-api.payments:8080: connect: connection refused"


def service(namespace: str, name: str, ip: str, *pods: str) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "name": name,
        "cluster_ip": ip,
        "selector": {"app": name},
        "ready_addresses": [],
        "not_ready_addresses": [{"ip": "10.244.0.9", "pod": p} for p in pods],
        "has_ready_endpoints": False,
    }


SERVICES = [
    service("payments", "payments-api", "10.96.0.14", "payments-api-1", "payments-api-2"),
    service("platform", "redis", "10.96.0.18", "redis-0"),
    service("shop", "checkout", "10.96.0.13", "checkout-1"),
]


@pytest.mark.parametrize(
    ("line", "namespace", "named"),
    [
        (REFUSED, "shop", ["payments-api"]),
        ("dial payments-api.payments.svc.cluster.local:8080: i/o timeout", "shop", ["payments-api"]),
        ("GET http://payments-api.payments.svc/v1/charges failed", "shop", ["payments-api"]),
        ("dial tcp 10.96.0.14:8080: connect: connection refused", "shop", ["payments-api"]),
        ("redis:6379: connection refused", "platform", ["redis"]),
        ("redis:6379: connection refused", "shop", []),
        ("POST https://api.psp.example/v1/charges failed: 502", "shop", []),
        ("payments-api is down, giving up", "shop", []),
        ("cannot reach redis.platform:6379 or payments-api.payments:8080", "shop", ["redis", "payments-api"]),
    ],
)
def test_a_log_line_names_only_services_the_scan_listed(line: str, namespace: str, named: list[str]) -> None:
    assert [s["name"] for s in services_named(line, namespace, SERVICES)] == named


def probe(pod: str, quote: str, source_kind: str = "logs", *, namespace: str = "shop") -> Finding:
    return Finding(
        kind="probe_failure",
        severity="warning",
        resource=f"pod {namespace}/{pod}",
        summary=f"Pod {namespace}/{pod} is failing its readiness probes (ready 0/1, 0 restarts).",
        root_cause=f"The readiness probes of pod {namespace}/{pod} fail; its log says: {quote!r}",
        evidence=(Evidence(quote=quote, source=f"pod {namespace}/{pod} ({source_kind})"),),
        namespace=namespace,
        workload=pod.rsplit("-", 1)[0],
        key=f"pod/{namespace}/{pod}",
    )


def crashloop(pod: str, quote: str = FATAL) -> Finding:
    return Finding(
        kind="crashloop",
        severity="critical",
        resource=f"pod payments/{pod}",
        summary=f"Pod payments/{pod} is in CrashLoopBackOff (7 restarts).",
        root_cause=f"Container payments-api in pod payments/{pod} exits with code 1.",
        evidence=(Evidence(quote=quote, source=f"pod payments/{pod} (previous logs)"),),
        decisive=True,
        namespace="payments",
        workload="payments-api",
        key=f"pod/payments/{pod}",
    )


def test_a_probe_failure_depends_on_the_service_its_log_cannot_reach_and_on_its_pods() -> None:
    [linked] = link_dependencies([probe("checkout-1", REFUSED)], SERVICES)
    assert linked.depends_on == (
        "service/payments/payments-api",
        "pod/payments/payments-api-1",
        "pod/payments/payments-api-2",
    )


def test_only_a_probe_failures_own_log_line_links_a_dependency() -> None:
    own_service = probe("checkout-1", "GET checkout.shop:80/ready failed: 503")
    from_an_event = probe("checkout-2", REFUSED, source_kind="Unhealthy event, x3")
    crashing = crashloop("payments-api-1", quote=REFUSED)
    linked = link_dependencies([own_service, from_an_event, crashing], SERVICES)
    assert [f.depends_on for f in linked] == [(), (), ()]


def _checkout_and_payments() -> list[Finding]:
    findings = [
        probe("checkout-1", REFUSED),
        crashloop("payments-api-1"),
        crashloop("payments-api-2"),
    ]
    return link_dependencies(findings, SERVICES)


def test_asked_about_the_dependent_the_rca_names_the_dependency_as_the_cause() -> None:
    rca = build_rca(_checkout_and_payments(), question="why is checkout failing?")
    assert rca.summary.startswith(
        "checkout depends on payments-api, which is failing: "
        "Pod payments/payments-api-1 is in CrashLoopBackOff"
    )
    assert rca.root_cause.startswith("Container payments-api in pod payments/payments-api-1 exits")
    assert "readiness probes of pod shop/checkout-1 fail" in rca.root_cause
    assert rca.confidence.level == "high"


def test_the_same_line_from_several_replicas_is_quoted_once() -> None:
    rca = build_rca(_checkout_and_payments(), question="why is checkout failing?")
    assert [e.quote for e in rca.evidence] == [FATAL, REFUSED]


def test_asked_about_the_dependency_itself_the_rca_is_its_own() -> None:
    rca = build_rca(_checkout_and_payments(), question="why is payments-api crashing?")
    assert rca.summary.startswith("Pod payments/payments-api-1 is in CrashLoopBackOff")
    assert "depends on" not in rca.summary


def test_without_a_link_the_probe_failure_the_question_names_stays_first() -> None:
    unlinked = [probe("checkout-1", "readiness check failed: upstream timeout"), crashloop("payments-api-1")]
    rca = build_rca(link_dependencies(unlinked, SERVICES), question="why is checkout failing?")
    assert rca.summary.startswith("Pod shop/checkout-1 is failing its readiness probes")
    assert rca.confidence.level == "medium"
