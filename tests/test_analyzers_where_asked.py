"""No-LLM answers look where the user asked: a namespace named in the question, every namespace when
the team's own shows nothing wrong, and never a scan older than a cluster change.

Every test goes through the real ``kubernetes`` client against the emulator, with the team's
kubeconfig pointing at namespace ``default`` and no namespace in team config, as a new team has it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from incidentfox.agents.analyzers.shared_scan import SharedScans
from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import ProgressEvent
from incidentfox.agents.investigation import AnalyzerInvestigator
from incidentfox.agents.rca import RootCauseAnalysis
from incidentfox.emulators.kubernetes import KubernetesEmulator, load_scenario

HEALTHY_DEFAULT: dict[str, Any] = {
    "pods": [
        {
            "name": "web-6c7d8e9f0-a1b2c",
            "namespace": "default",
            "owner": "web",
            "node": "worker-1",
            "containers": [
                {"name": "web", "image": "registry.example.com/site/web:3.2.0", "log": "INFO up\n"}
            ],
        }
    ],
    "deployments": [{"name": "web", "namespace": "default", "replicas": 1}],
    "services": [{"name": "web", "namespace": "default", "ports": ["80:8080"]}],
}


def moved_to_shop(scenario: str) -> dict[str, Any]:
    """A bundled failure scenario with its objects in namespace shop, beside a healthy default."""
    doc = dict(load_scenario(scenario))
    doc["namespace"] = "shop"
    for kind, healthy in HEALTHY_DEFAULT.items():
        doc[kind] = [*(doc.get(kind) or []), *healthy]
    return doc


@dataclass
class Team:
    emulator: KubernetesEmulator
    kubeconfig: Path
    clock: list[float]
    investigator: AnalyzerInvestigator

    async def ask(self, question: str) -> RootCauseAnalysis:
        config: Mapping[str, Any] = {"integrations": {"kubernetes": {"kubeconfig": str(self.kubeconfig)}}}
        events: list[ProgressEvent] = []
        context = InvestigationContext(
            run_id="run_1", org_id="acme", team_node_id="shop-team", config=config, emit=events.append
        )
        outcome = await self.investigator.investigate(context, question, [])
        assert outcome.rca is not None, outcome.error
        return outcome.rca


@pytest.fixture
async def team(tmp_path: Path) -> AsyncIterator[Team]:
    clock = [0.0]
    async with KubernetesEmulator("crashloop_in_shop") as emulator:
        kubeconfig = emulator.write_kubeconfig(tmp_path / "kubeconfig", namespace="default")
        scans = SharedScans(ttl_s=10, clock=lambda: clock[0])
        yield Team(emulator, kubeconfig, clock, AnalyzerInvestigator(scans))


def _text(rca: RootCauseAnalysis) -> str:
    return " ".join([rca.summary, rca.root_cause, *rca.caveats])


async def test_what_is_wrong_in_namespace_shop_names_shops_failing_workload(team: Team) -> None:
    rca = await team.ask("what is wrong in namespace shop?")
    assert rca.summary.startswith("Pod shop/checkout-7d9f8b6c5-x2k4q is in CrashLoopBackOff")
    assert "Environment variable DEPLOY_ENV is undefined" in rca.root_cause
    assert rca.confidence.level == "high"
    assert "Looked in namespace shop, as the question asks." in rca.caveats


@pytest.mark.parametrize(
    ("scenario", "question", "named"),
    [
        ("crashloop", "what is wrong in namespace shop?", "Pod shop/checkout-7d9f8b6c5-x2k4q"),
        ("oomkilled", "what is wrong in ns shop?", "Pod shop/report-worker-5c6d7e8f9-h4j6k"),
        ("imagepull", "anything broken in the shop namespace?", "Pod shop/payments-84f5c9d7b-t9v2x"),
        ("unschedulable", "kubectl get pods -n shop looks bad", "Pod shop/search-indexer-6f7b8c9d4-z5x8c"),
        ("probe_failure", "what is wrong in namespace shop?", "Pod shop/api-5f9c8d7b6-k3m9p"),
        ("no_endpoints", "what is wrong in namespace shop?", "Service shop/frontend"),
        ("pending_pvc", "what is wrong in namespace shop?", "Volume claim shop/data-postgres-0"),
        (
            "node_notready",
            "what is wrong in namespace shop?",
            "pods on it: shop/inventory-5b6c7d8e9-p3q4r",
        ),
    ],
)
async def test_each_failure_in_shop_is_named_when_the_question_names_shop(
    team: Team, scenario: str, question: str, named: str
) -> None:
    team.emulator.load(moved_to_shop(scenario))
    rca = await team.ask(question)
    assert rca.summary != "No problems found in Kubernetes."
    assert named in rca.summary, rca.summary


async def test_a_question_naming_no_namespace_finds_the_failure_in_another_namespace(team: Team) -> None:
    rca = await team.ask("why is the site down?")
    assert rca.summary.startswith("Pod shop/checkout-7d9f8b6c5-x2k4q is in CrashLoopBackOff")
    assert any("then in all 3 namespaces because nothing was wrong there" in c for c in rca.caveats)


async def test_a_question_naming_a_deployment_ranks_it_first_across_namespaces(team: Team) -> None:
    broken_default = moved_to_shop("crashloop")
    broken_default["pods"] = [
        *broken_default["pods"],
        {
            "name": "cart-6b8d4c7f9-m2p7r",
            "namespace": "default",
            "owner": "cart",
            "node": "worker-1",
            "containers": [
                {
                    "name": "cart",
                    "image": "registry.example.com/shop/cart:1.9.3",
                    "ready": False,
                    "restarts": 3,
                    "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}},
                }
            ],
        },
    ]
    team.emulator.load(broken_default)
    rca = await team.ask("deployment checkout keeps restarting, why?")
    assert rca.summary.startswith("Pod shop/checkout-7d9f8b6c5-x2k4q is in CrashLoopBackOff"), rca.summary
    assert "cart-6b8d4c7f9-m2p7r" in " ".join(rca.follow_up_actions)


async def test_a_namespace_that_does_not_exist_is_said_and_not_trusted(team: Team) -> None:
    rca = await team.ask("what is wrong in namespace shpo?")
    assert any("There is no namespace named shpo" in c for c in rca.caveats)
    assert rca.summary.startswith("Pod shop/checkout-7d9f8b6c5-x2k4q is in CrashLoopBackOff")


async def test_a_cluster_change_between_two_questions_is_seen_by_the_second(team: Team) -> None:
    team.emulator.load({**load_scenario("healthy"), "namespace": "default"})
    first = await team.ask("why is checkout down?")
    assert first.summary == "No problems found in Kubernetes."
    team.emulator.load({**load_scenario("crashloop"), "namespace": "default"})
    team.clock[0] = 5.0
    second = await team.ask("why is checkout down?")
    assert second.summary.startswith("Pod default/checkout-7d9f8b6c5-x2k4q is in CrashLoopBackOff")


async def test_an_unchanged_cluster_is_not_scanned_again_within_the_window(team: Team) -> None:
    await team.ask("what is wrong in namespace shop?")
    logs_read = sum(1 for _, path in team.emulator.requests if "/log" in path)
    team.clock[0] = 5.0
    rca = await team.ask("what is wrong in namespace shop?")
    assert sum(1 for _, path in team.emulator.requests if "/log" in path) == logs_read
    assert "DEPLOY_ENV" in rca.root_cause


async def test_the_rca_says_when_the_cluster_was_read(team: Team) -> None:
    rca = await team.ask("what is wrong in namespace shop?")
    assert any(c.startswith("Cluster state read at ") and c.endswith(" UTC.") for c in rca.caveats)


async def test_rbac_that_cannot_list_namespaces_is_reported_not_crashed_on(team: Team) -> None:
    team.emulator.namespace_scoped = frozenset({"default"})
    rca = await team.ask("why is the site down?")
    assert rca.summary == "No problems found in Kubernetes."
    unchecked = next(c for c in rca.caveats if c.startswith("Other namespaces were not checked"))
    assert "403 Forbidden" in unchecked
    assert 'cannot list resource "namespaces"' in unchecked
    assert rca.confidence.level == "low"


async def test_rbac_refusing_the_named_namespace_is_said_in_plain_words(team: Team) -> None:
    team.emulator.namespace_scoped = frozenset({"default"})
    rca = await team.ask("what is wrong in namespace shop?")
    assert rca.summary == "Could not investigate: the Kubernetes API could not be read."
    assert "Not allowed to list pods in namespace shop (403 Forbidden" in rca.root_cause
