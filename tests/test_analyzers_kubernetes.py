"""No-LLM analysis: every scenario leads to the right finding and an RCA with quoted evidence."""

from __future__ import annotations

import pytest

from incidentfox.agents.analyzers import Finding, analyze_kubernetes, build_rca, rank_findings
from incidentfox.agents.analyzers.kubernetes import decisive_log_line
from incidentfox.agents.rca import Evidence, RootCauseAnalysis
from incidentfox.agents.toolsets.kubernetes_api import connect
from incidentfox.emulators.kubernetes import KubernetesEmulator


async def _analyze(scenario: str, question: str = "") -> tuple[list[Finding], RootCauseAnalysis]:
    async with KubernetesEmulator(scenario) as emulator:
        client = await connect(
            {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": emulator.token}}}
        )
        findings = await analyze_kubernetes(client, namespace="prod", question=question)
        client.close()
    return findings, build_rca(findings, question=question)


@pytest.mark.parametrize(
    ("scenario", "kind", "resource", "quote"),
    [
        (
            "crashloop",
            "crashloop",
            "pod prod/checkout-7d9f8b6c5-x2k4q",
            "Environment variable DEPLOY_ENV is undefined",
        ),
        (
            "oomkilled",
            "oomkilled",
            "pod prod/report-worker-5c6d7e8f9-h4j6k",
            "Reason: OOMKilled, Exit Code: 137",
        ),
        ("imagepull", "image_pull", "pod prod/payments-84f5c9d7b-t9v2x", "payments:2.0.1-rc3: not found"),
        (
            "unschedulable",
            "unschedulable",
            "pod prod/search-indexer-6f7b8c9d4-z5x8c",
            "2 Insufficient memory",
        ),
        ("probe_failure", "probe_failure", "pod prod/api-5f9c8d7b6-k3m9p", "Readiness probe failed"),
        ("no_endpoints", "no_endpoints", "service prod/frontend", "Selector: app=frontend-v2"),
        (
            "pending_pvc",
            "pending_pvc",
            "pvc prod/data-postgres-0",
            'storageclass.storage.k8s.io "fast-ssd-v2" not found',
        ),
        ("node_notready", "node_not_ready", "node worker-2", "Kubelet stopped posting node status."),
    ],
)
async def test_each_scenario_is_analysed_to_its_root_cause(
    scenario: str, kind: str, resource: str, quote: str
) -> None:
    findings, rca = await _analyze(scenario)
    top = findings[0]
    assert (top.kind, top.resource) == (kind, resource)
    assert any(quote in e.quote for e in top.evidence)
    assert quote in " ".join(e.quote for e in rca.evidence)
    assert rca.immediate_actions


async def test_crashloop_rca_names_pod_and_quotes_previous_log_with_source() -> None:
    _, rca = await _analyze("crashloop", "why is checkout crashlooping?")
    assert "checkout-7d9f8b6c5-x2k4q" in rca.root_cause
    assert "Environment variable DEPLOY_ENV is undefined" in rca.root_cause
    assert rca.evidence[0] == Evidence(
        quote="Error: Environment variable DEPLOY_ENV is undefined",
        source="pod prod/checkout-7d9f8b6c5-x2k4q (previous logs)",
    )
    assert rca.confidence.level == "high"


async def test_crashloop_symptom_service_ranks_below_its_cause() -> None:
    findings, _ = await _analyze("crashloop")
    assert [f.kind for f in findings] == ["crashloop", "no_endpoints"]
    assert findings[1].resource == "service prod/checkout"
    assert findings[1].decisive is False


async def test_oomkilled_names_the_memory_limit() -> None:
    findings, rca = await _analyze("oomkilled")
    assert "512Mi" in findings[0].summary
    assert Evidence(
        quote="Limits: memory: 512Mi", source="pod prod/report-worker-5c6d7e8f9-h4j6k (container worker spec)"
    ) in (rca.evidence)
    assert rca.confidence.level == "high"


async def test_probe_failure_is_medium_confidence() -> None:
    _, rca = await _analyze("probe_failure")
    assert rca.confidence.level == "medium"
    assert {e.quote.split(" probe")[0] for e in rca.evidence if "probe failed" in e.quote} == {
        "Readiness",
        "Liveness",
    }


async def test_pending_claim_is_preferred_over_the_pod_it_blocks() -> None:
    findings, rca = await _analyze("pending_pvc", "why is postgres not starting?")
    assert [f.kind for f in findings][:2] == ["pending_pvc", "unschedulable"]
    assert "data-postgres-0" in rca.root_cause
    assert rca.confidence.level == "high"


async def test_healthy_cluster_gets_a_clear_no_problems_rca() -> None:
    findings, rca = await _analyze("healthy", "is checkout ok?")
    assert [f.kind for f in findings] == ["healthy"]
    assert rca.summary == "No problems found in Kubernetes."
    assert "Checked 3 pods, 2 nodes, 2 services, 1 volume claims in namespace prod" in rca.root_cause
    assert rca.evidence == ()
    assert rca.confidence.level == "medium"


async def test_unreachable_api_gives_a_low_confidence_plain_rca() -> None:
    async with KubernetesEmulator("crashloop") as emulator:
        client = await connect(
            {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": emulator.token}}}
        )
        emulator.unreachable = True
        findings = await analyze_kubernetes(client, namespace="prod", question="why is checkout down?")
    rca = build_rca(findings, question="why is checkout down?")
    assert [f.kind for f in findings] == ["api_error"]
    assert rca.summary == "Could not investigate: the Kubernetes API could not be read."
    assert f"Kubernetes API at {emulator.api_url} is unreachable" in rca.root_cause
    assert rca.confidence.level == "low"


async def test_question_naming_a_workload_ranks_its_findings_first() -> None:
    findings, _ = await _analyze("crashloop")
    cart = Finding(
        kind="crashloop",
        severity="critical",
        resource="pod prod/cart-1",
        summary="cart crashes",
        root_cause="cart crashes",
        decisive=True,
        workload="cart",
        key="pod/prod/cart-1",
    )
    ranked = rank_findings([*findings, cart], "why is the cart service crashing?")
    assert ranked[0].workload == "cart"
    assert (
        rank_findings([*findings, cart], "why is checkout crashing?")[0].resource
        == "pod prod/checkout-7d9f8b6c5-x2k4q"
    )


async def test_question_about_something_else_lowers_confidence() -> None:
    _, rca = await _analyze("crashloop", "why is billing slow?")
    assert rca.confidence.level == "medium"
    assert "No finding names what the question asks about" in rca.confidence.why


def test_decisive_log_line_prefers_fatal_lines_over_info_noise() -> None:
    log = "\n".join(
        [
            "INFO connecting to cache",
            "WARN retrying request (failed once)",
            "panic: runtime error: invalid memory address or nil pointer dereference",
            "goroutine 1 [running]:",
        ]
    )
    assert decisive_log_line(log) == "panic: runtime error: invalid memory address or nil pointer dereference"
    assert decisive_log_line("INFO all good\nINFO still good\n") is None
    assert decisive_log_line("ERROR a\nINFO b\nERROR c") == "ERROR c"
