"""The kubernetes toolset against the emulator, and the FunctionTool adapter through openai-agents."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, FunctionTool, Runner, set_tracing_disabled
from agents import Tool as AgentTool
from agents.testing import ScriptedModel, assistant_message, function_call
from agents.tool_context import ToolContext

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import ProgressEvent, ToolEnd, ToolStart
from incidentfox.agents.output_budget import OutputBudget
from incidentfox.agents.toolsets import kubernetes as kt
from incidentfox.agents.toolsets.base import Tool, ToolResult, Toolset
from incidentfox.agents.toolsets.function_tools import toolset_function_tools
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient, KubernetesNotConfigured, connect
from incidentfox.emulators.kubernetes import KubernetesEmulator

POD = "checkout-7d9f8b6c5-x2k4q"


@pytest.fixture
async def emulator() -> AsyncIterator[KubernetesEmulator]:
    async with KubernetesEmulator("crashloop") as k8s:
        yield k8s


@pytest.fixture
async def k8s(emulator: KubernetesEmulator) -> AsyncIterator[KubernetesClient]:
    client = await connect(
        {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": emulator.token}}}
    )
    yield client
    client.close()


def _tool(name: str) -> Tool:
    return next(t for t in kt.KUBERNETES.tools if t.name == name)


async def _run(client: KubernetesClient, tool_name: str, /, **args: Any) -> ToolResult:
    tool = _tool(tool_name)
    return await tool.run(client, tool.params.model_validate(args))


async def test_connect_from_kubeconfig_uses_context_namespace(
    emulator: KubernetesEmulator, tmp_path: Path
) -> None:
    path = emulator.write_kubeconfig(tmp_path / "kubeconfig", namespace="prod")
    client = await connect({"integrations": {"kubernetes": {"kubeconfig": str(path)}}})
    assert client.default_namespace == "prod"
    assert client.api_url == emulator.api_url
    assert (await client.version()).startswith("v1.33")


async def test_connect_never_reads_the_kubeconfig_environment_variable(
    emulator: KubernetesEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(emulator.write_kubeconfig(tmp_path / "kc")))
    with pytest.raises(KubernetesNotConfigured, match=r"integrations\.kubernetes\.kubeconfig_content"):
        await connect({"integrations": {}})


async def test_connect_from_inline_kubeconfig_content(emulator: KubernetesEmulator, tmp_path: Path) -> None:
    content = emulator.write_kubeconfig(tmp_path / "kc", namespace="prod").read_text()
    client = await connect({"integrations": {"kubernetes": {"kubeconfig_content": content}}})
    assert client.default_namespace == "prod"
    result = await _run(client, "list_nodes")
    assert [n["name"] for n in result.data] == ["worker-1", "worker-2"]
    client.close()


async def test_connect_without_any_config_says_what_to_set() -> None:
    with pytest.raises(KubernetesNotConfigured, match=r"integrations\.kubernetes\.api_url"):
        await connect({})


async def test_list_pods_shows_kubectl_status_ready_and_restarts(k8s: KubernetesClient) -> None:
    result = await _run(k8s, "list_pods", namespace="prod")
    assert result.status == "ok"
    assert result.invocation == "kubectl get pods -n prod"
    pod = next(p for p in result.data if p["name"] == POD)
    assert (pod["status"], pod["ready"], pod["restarts"], pod["node"], pod["workload"]) == (
        "CrashLoopBackOff",
        "0/1",
        7,
        "worker-1",
        "checkout",
    )
    assert pod["age"] == "25m"


async def test_list_pods_all_namespaces_and_label_selector(k8s: KubernetesClient) -> None:
    everything = await _run(k8s, "list_pods", all_namespaces=True)
    cart = await _run(k8s, "list_pods", namespace="prod", label_selector="app=cart")
    none = await _run(k8s, "list_pods", namespace="staging")
    assert {p["namespace"] for p in everything.data} == {"prod"}
    assert len(everything.data) == 2
    assert [p["name"] for p in cart.data] == ["cart-6b8d4c7f9-m2p7r"]
    assert none.status == "no_data"


async def test_describe_pod_has_states_exit_codes_probes_limits_and_events(k8s: KubernetesClient) -> None:
    result = await _run(k8s, "describe_pod", name=POD, namespace="prod")
    container = result.data["containers"][0]
    assert container["state"] == {
        "state": "waiting",
        "reason": "CrashLoopBackOff",
        "message": f"back-off 5m0s restarting failed container=checkout pod={POD}_prod(3f1c)",
    }
    assert container["last_state"]["reason"] == "Error"
    assert container["last_state"]["exit_code"] == 1
    assert container["limits"] == {"memory": "256Mi"}
    assert container["readiness_probe"].startswith("http-get :8080/ready")
    assert result.data["events"][0]["reason"] == "BackOff"


async def test_get_events_puts_warnings_first_and_filters_by_object(k8s: KubernetesClient) -> None:
    all_events = await _run(k8s, "get_events", namespace="prod")
    about_deploy = await _run(k8s, "get_events", namespace="prod", involved_object="checkout")
    warnings = await _run(k8s, "get_events", namespace="prod", warnings_only=True)
    assert [e["type"] for e in all_events.data] == ["Warning", "Normal", "Normal"]
    assert [e["reason"] for e in about_deploy.data] == ["ScalingReplicaSet"]
    assert {e["type"] for e in warnings.data} == {"Warning"}
    assert all_events.data[0]["count"] == 31


async def test_pod_logs_previous_and_tail(k8s: KubernetesClient) -> None:
    tail = await _run(k8s, "pod_logs", name=POD, namespace="prod", previous=True, tail_lines=2)
    assert tail.status == "ok"
    assert tail.data["lines"] == 2
    assert tail.data["log"].endswith("Error: Environment variable DEPLOY_ENV is undefined")
    assert tail.invocation == f"kubectl logs -n prod {POD} --previous --tail=2"
    default = await _run(k8s, "pod_logs", name=POD, namespace="prod", previous=True)
    assert default.data["lines"] == 5


async def test_pod_logs_without_previous_run_is_a_plain_error(k8s: KubernetesClient) -> None:
    result = await _run(k8s, "pod_logs", name="cart-6b8d4c7f9-m2p7r", namespace="prod", previous=True)
    assert result.status == "error"
    assert result.error == (
        "Could not read previous logs of pod prod/cart-6b8d4c7f9-m2p7r: "
        'previous terminated container "cart" in pod "cart-6b8d4c7f9-m2p7r" not found.'
    )


async def test_missing_pod_is_a_plain_404(k8s: KubernetesClient) -> None:
    result = await _run(k8s, "describe_pod", name="ghost", namespace="prod")
    assert result.status == "error"
    assert result.error == 'Could not read pod prod/ghost: pods "ghost" not found (404).'


async def test_deployments_and_rollout_status(k8s: KubernetesClient) -> None:
    deployments = await _run(k8s, "list_deployments", namespace="prod")
    rollout = await _run(k8s, "rollout_status", name="checkout", namespace="prod")
    cart = next(d for d in deployments.data if d["name"] == "cart")
    assert (cart["desired"], cart["updated"], cart["available"], cart["rollout"]) == (1, 1, 1, "complete")
    assert rollout.data["progressing"] is True
    assert rollout.data["available"] == 0
    assert "0 of 1 updated replicas are available" in rollout.data["rollout_message"]
    assert {"type": "Available", "status": "False"}.items() <= rollout.data["conditions"][0].items()


async def test_stalled_rollout_is_reported() -> None:
    async with KubernetesEmulator("imagepull") as emulator:
        client = await connect(
            {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": emulator.token}}}
        )
        result = await _run(client, "rollout_status", name="payments", namespace="prod")
    assert result.data["rollout"] == "stalled"
    assert result.data["rollout_message"] == 'deployment "payments" exceeded its progress deadline'


async def test_services_and_endpoints_split_ready_and_not_ready(k8s: KubernetesClient) -> None:
    result = await _run(k8s, "services_and_endpoints", namespace="prod")
    by_name = {s["name"]: s for s in result.data}
    assert by_name["cart"]["has_ready_endpoints"] is True
    assert by_name["cart"]["ready_addresses"][0]["pod"] == "cart-6b8d4c7f9-m2p7r"
    assert by_name["checkout"]["has_ready_endpoints"] is False
    assert [a["pod"] for a in by_name["checkout"]["not_ready_addresses"]] == [POD]
    one = await _run(k8s, "services_and_endpoints", namespace="prod", name="cart")
    assert [s["name"] for s in one.data] == ["cart"]


async def test_nodes_show_ready_pressure_and_taints() -> None:
    async with KubernetesEmulator("node_notready") as emulator:
        client = await connect(
            {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": emulator.token}}}
        )
        result = await _run(client, "list_nodes")
    bad = next(n for n in result.data if n["name"] == "worker-2")
    assert (bad["status"], bad["ready"], bad["ready_reason"]) == ("NotReady", "Unknown", "NodeStatusUnknown")
    assert bad["pressure"] == ["MemoryPressure"]
    assert "node.kubernetes.io/unreachable:NoExecute" in bad["taints"]


async def test_pvcs_show_phase_and_class() -> None:
    async with KubernetesEmulator("pending_pvc") as emulator:
        client = await connect(
            {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": emulator.token}}}
        )
        result = await _run(client, "list_pvcs", namespace="prod")
    assert result.data == [
        {
            "namespace": "prod",
            "name": "data-postgres-0",
            "phase": "Pending",
            "storage_class": "fast-ssd-v2",
            "requested": "50Gi",
            "access_modes": ["ReadWriteOnce"],
            "age": "1h",
        }
    ]


async def test_unreachable_api_is_plain_words(emulator: KubernetesEmulator, k8s: KubernetesClient) -> None:
    emulator.unreachable = True
    dropped = await _run(k8s, "list_pods", namespace="prod")
    await emulator.stop()
    refused = await _run(k8s, "list_nodes")
    assert dropped.status == refused.status == "error"
    assert dropped.error == (
        f"Kubernetes API at {k8s.api_url} is unreachable (connection dropped); "
        "could not list pods in namespace prod."
    )
    assert (
        refused.error
        == f"Kubernetes API at {k8s.api_url} is unreachable (connection refused); could not list nodes."
    )
    assert "Traceback" not in str(dropped.error)


async def test_wrong_token_is_plain_words(emulator: KubernetesEmulator) -> None:
    client = await connect({"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": "stale"}}})
    result = await _run(client, "list_pods", namespace="prod")
    assert result.status == "error"
    assert result.error is not None
    assert result.error.startswith(
        f"Kubernetes API at {emulator.api_url} rejected the credentials (401 Unauthorized)"
    )


# --- the FunctionTool adapter -------------------------------------------------------------------


def _context(emulator: KubernetesEmulator, events: list[ProgressEvent]) -> InvestigationContext:
    config = {"integrations": {"kubernetes": {"api_url": emulator.api_url, "token": emulator.token}}}
    return InvestigationContext(
        run_id="run-1", org_id="acme", team_node_id="sre", config=config, emit=events.append
    )


def _function_tool(name: str, **kwargs: Any) -> FunctionTool:
    return next(
        t for t in toolset_function_tools(kt.KUBERNETES, agent="kubernetes", **kwargs) if t.name == name
    )


async def test_function_tools_have_strict_schemas() -> None:
    tools = toolset_function_tools(kt.KUBERNETES, agent="kubernetes")
    assert [t.name for t in tools] == [t.name for t in kt.KUBERNETES.tools]
    logs = next(t for t in tools if t.name == "pod_logs")
    assert logs.strict_json_schema is True
    assert logs.params_json_schema["additionalProperties"] is False
    assert set(logs.params_json_schema["required"]) == set(kt.PodLogsParams.model_fields)


async def test_adapter_emits_events_scrubs_secrets_and_caches_client(emulator: KubernetesEmulator) -> None:
    events: list[ProgressEvent] = []
    ctx = _context(emulator, events)
    tool = _function_tool("pod_logs")
    args = json.dumps({"name": POD, "namespace": "prod", "previous": True})
    out = await tool.on_invoke_tool(
        ToolContext(ctx, tool_name="pod_logs", tool_call_id="call-7", tool_arguments=args), args
    )
    body = json.loads(out)
    assert body["status"] == "ok"
    assert "DEPLOY_ENV is undefined" in body["data"]["log"]
    assert "s3cr3t-pa55" not in out
    assert "postgres://checkout:[REDACTED]@db.prod" in body["data"]["log"]
    assert emulator.token not in out
    start, end = events
    assert isinstance(start, ToolStart) and isinstance(end, ToolEnd)
    assert (start.call_id, start.tool, start.agent, start.args["name"]) == (
        "call-7",
        "pod_logs",
        "kubernetes",
        POD,
    )
    assert (end.call_id, end.status, end.summary) == (
        "call-7",
        "ok",
        "5 log lines · 1 secret scrubbed from the output",
    )
    assert isinstance(ctx.clients["kubernetes"], KubernetesClient)


async def test_adapter_turns_bad_arguments_into_a_readable_error(emulator: KubernetesEmulator) -> None:
    events: list[ProgressEvent] = []
    tool = _function_tool("pod_logs")
    args = json.dumps({"namespace": "prod", "tail_lines": -3})
    out = await tool.on_invoke_tool(
        ToolContext(_context(emulator, events), tool_name="pod_logs", tool_call_id="c1", tool_arguments=args),
        args,
    )
    body = json.loads(out)
    assert body["status"] == "error"
    assert body["error"].startswith("Invalid arguments for pod_logs: name: Field required; tail_lines:")
    assert [e.kind for e in events] == ["tool_start", "tool_end"]
    assert emulator.requests == []


async def test_adapter_keeps_over_budget_output_and_asks_to_narrow(emulator: KubernetesEmulator) -> None:
    events: list[ProgressEvent] = []
    tool = _function_tool("list_pods", budget=OutputBudget(default=8000, per_tool={"list_pods": 400}))
    args = json.dumps({"namespace": "prod"})
    ctx = _context(emulator, events)
    out = await tool.on_invoke_tool(
        ToolContext(ctx, tool_name="list_pods", tool_call_id="c2", tool_arguments=args), args
    )
    assert len(out) <= 400
    assert json.loads(out)["kept_as"] == "out-1"
    assert "search_output" in out
    assert "label_selector" in out
    assert any(POD in line for line in ctx.scratch.outputs.get("out-1").lines)


async def test_adapter_reports_unreachable_api_to_the_model(emulator: KubernetesEmulator) -> None:
    events: list[ProgressEvent] = []
    emulator.unreachable = True
    tool = _function_tool("list_nodes")
    out = await tool.on_invoke_tool(
        ToolContext(
            _context(emulator, events), tool_name="list_nodes", tool_call_id="c3", tool_arguments="{}"
        ),
        "{}",
    )
    assert json.loads(out)["error"].startswith(f"Kubernetes API at {emulator.api_url} is unreachable")
    assert isinstance(events[-1], ToolEnd)
    assert events[-1].status == "error"


async def test_write_tool_returns_approval_required_without_running() -> None:
    ran: list[str] = []

    async def restart(client: object, params: kt.DeploymentParams) -> ToolResult:
        ran.append(params.name)
        return ToolResult.ok("restarted")

    async def connect_nothing(config: object) -> None:
        return None

    toolset = Toolset(
        name="kubernetes-write",
        description="",
        instructions="",
        tools=(Tool("restart_deployment", "Restart", kt.DeploymentParams, restart, writes=True),),  # type: ignore[arg-type]
        connect=connect_nothing,
    )
    events: list[ProgressEvent] = []
    ctx = InvestigationContext(run_id="r", org_id="o", team_node_id="t", config={}, emit=events.append)
    (tool,) = toolset_function_tools(toolset, agent="kubernetes")
    args = json.dumps({"name": "checkout", "namespace": "prod"})
    out = await tool.on_invoke_tool(
        ToolContext(ctx, tool_name=tool.name, tool_call_id="w1", tool_arguments=args), args
    )
    assert json.loads(out)["status"] == "approval_required"
    assert ran == []
    assert isinstance(events[-1], ToolEnd)
    assert events[-1].status == "approval_required"


async def test_adapter_runs_inside_an_openai_agents_run(emulator: KubernetesEmulator) -> None:
    set_tracing_disabled(True)
    events: list[ProgressEvent] = []
    model = ScriptedModel(
        [
            [
                function_call(
                    "list_pods",
                    {"namespace": "prod", "all_namespaces": False, "label_selector": None},
                    call_id="a1",
                )
            ],
            [assistant_message("checkout is crash-looping")],
        ]
    )
    tools: list[AgentTool] = list(toolset_function_tools(kt.KUBERNETES, agent="kubernetes"))
    agent = Agent(name="kubernetes", model=model, tools=tools)
    result = await Runner.run(agent, "why is checkout down?", context=_context(emulator, events))
    assert result.final_output == "checkout is crash-looping"
    assert [(e.kind, getattr(e, "call_id", None)) for e in events] == [
        ("tool_start", "a1"),
        ("tool_end", "a1"),
    ]
    tool_outputs = [item.output for item in result.new_items if item.type == "tool_call_output_item"]
    assert "CrashLoopBackOff" in str(tool_outputs[0])
