"""The deployment (deploy/): the Helm chart rendered by Helm's own Go SDK (helm-python-sdk), every
manifest checked against the Kubernetes API schemas (kubernetes-validate, strict), and the two
Dockerfiles read for what the chart and the sandbox backend count on. All offline."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from claude_agent_sdk._cli_version import __cli_version__

from incidentfox.agents.queue import SHARED_STREAM, team_stream
from incidentfox.bot.settings import Settings
from incidentfox.sandboxes.backends.kubernetes_manifests import WORKDIR, PodSettings
from incidentfox.sandboxes.kubernetes_setup import proxy_pod_labels

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "incidentfox"
RELEASE, NAMESPACE = "ifx", "incidentfox"
# The chart's minimum (Chart.yaml kubeVersion) and the newest schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.27.0", "1.37.0")
# CRDs of prometheus-operator: kubernetes-validate has only the built-in kinds, so these get
# structural checks of their own (test_custom_resources_point_at_what_the_chart_renders).
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")

REQUIRED: dict[str, Any] = {
    "secretKey": "sentinel-secret-key-0001",
    "database": {"url": "postgresql+asyncpg://ifx:sentinel-db-password@db:5432/incidentfox"},
    "redis": {"url": "redis://:sentinel-redis-password@redis:6379/0"},
}
SECRETS: dict[str, Any] = {
    **REQUIRED,
    "adminToken": "sentinel-admin-token",
    "slack": {
        "botToken": "xoxb-sentinel",
        "signingSecret": "sentinel-signing",
        "clientSecret": "sentinel-cs",
    },
    "openai": {"apiKey": "sk-sentinel-openai", "model": "gpt-4.1", "baseUrl": "https://llm.example/v1"},
    "anthropic": {"apiKey": "sk-ant-sentinel"},
    "github": {"token": "ghp_sentinel", "webhookSecret": "sentinel-gh-hook"},
    "pagerduty": {"apiKey": "sentinel-pd-key", "webhookSecret": "sentinel-pd-hook", "fromEmail": "sre@x.io"},
    "incidentio": {"webhookSecret": "sentinel-iio-hook"},
}
CASES: dict[str, dict[str, Any]] = {
    "shared": REQUIRED,
    "dedicated": {
        **SECRETS,
        "sandbox": {"enabled": True, "namespace": "ifx-sandboxes"},
        "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
        "workers": {"autoscaling": {"queue": {"enabled": True}}},
        "dedicatedTeams": [
            {"team": "acme/payments", "replicas": 1, "autoscaling": {"minReplicas": 1, "maxReplicas": 3}},
            {"team": "globex/search", "name": "globex", "replicas": 3, "autoscaling": {"enabled": False}},
        ],
    },
    "socket": {
        **REQUIRED,
        "slack": {"botToken": "xoxb-sentinel", "appToken": "xapp-sentinel"},
        "ingress": {"enabled": True, "host": "ifx.example.com"},
    },
}

Doc = dict[str, Any]


def render(values: dict[str, Any]) -> list[Doc]:
    with helm.Chart.load(CHART) as chart:
        files = chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return [
        doc
        for path, text in sorted(files.items())
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Doc]]:
    return {case: render(values) for case, values in CASES.items()}


def only(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def pod_templates(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d["kind"] in ("Deployment", "Job")]


def container(workload: Doc) -> Doc:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def env_of(workload: Doc) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(workload).get("env", [])}


def worker(name: str = "") -> str:
    return f"{RELEASE}-incidentfox-worker" + (f"-{name}" if name else "")


def check_operator_resource(doc: Doc) -> None:
    """What a ServiceMonitor or PrometheusRule must hold for prometheus-operator to accept it."""
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
    if doc["kind"] == "ServiceMonitor":
        assert set(doc["spec"]) <= {"selector", "namespaceSelector", "endpoints", "jobLabel"}
        assert doc["spec"]["selector"]["matchLabels"]
        for endpoint in doc["spec"]["endpoints"]:
            assert set(endpoint) <= {"port", "path", "interval", "scheme"} and endpoint["port"]
    else:
        for group in doc["spec"]["groups"]:
            for rule in group["rules"]:
                assert set(rule) == {"record", "expr"}
                assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", rule["record"])


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("case", CASES)
def test_every_manifest_validates_against_the_kubernetes_schema(rendered, case, version):
    docs = rendered[case]
    assert {"Deployment", "Service", "ConfigMap", "Secret", "Job", "NetworkPolicy"} <= {
        d["kind"] for d in docs
    }
    for doc in docs:
        if doc["kind"] in OPERATOR_KINDS:
            check_operator_resource(doc)
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} at {where}: {exc.message}")


@pytest.mark.parametrize("case", CASES)
def test_chart_passes_helm_lint_strict(case):
    report = helm.lint(CHART, CASES[case], strict=True, namespace=NAMESPACE, kube_version="v1.37.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_bot_shared_and_dedicated_workers_run_their_roles(rendered):
    docs = rendered["dedicated"]
    args = {d["metadata"]["name"]: container(d)["args"] for d in docs if d["kind"] == "Deployment"}
    assert args == {
        f"{RELEASE}-incidentfox-bot": ["serve", "--role", "bot"],
        worker(): ["serve", "--role", "worker"],
        worker("acme-payments"): ["serve", "--role", "worker", "--team", "acme/payments"],
        worker("globex"): ["serve", "--role", "worker", "--team", "globex/search"],
    }
    assert env_of(only(docs, "Deployment", f"{RELEASE}-incidentfox-bot"))["WORKER_PROCESSES"] == "0"
    # No two Deployments may select each other's pods.
    selectors = [d["spec"]["selector"]["matchLabels"] for d in docs if d["kind"] == "Deployment"]
    pools = [s["incidentfox.dev/pool"] for s in selectors]
    assert len(set(pools)) == len(pools)


def test_dedicated_team_entries_override_the_shared_worker_settings(rendered):
    docs = rendered["dedicated"]
    globex = only(docs, "Deployment", worker("globex"))
    assert globex["spec"]["replicas"] == 3
    assert not [
        d for d in docs if d["kind"] == "HorizontalPodAutoscaler" and "globex" in d["metadata"]["name"]
    ]
    assert "replicas" not in only(docs, "Deployment", worker("acme-payments"))["spec"]  # the HPA owns it
    hpa = only(docs, "HorizontalPodAutoscaler", worker("acme-payments"))["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 3)
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "PodDisruptionBudget"} == {
        f"{RELEASE}-incidentfox-bot",
        worker(),
        worker("acme-payments"),
        worker("globex"),
    }


def test_migrations_run_as_a_pre_install_and_pre_upgrade_hook(rendered):
    docs = rendered["shared"]
    job = only(docs, "Job", f"{RELEASE}-incidentfox-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert container(job)["args"] == ["migrate"]
    # Its DATABASE_URL comes from a hook Secret made before it (the release's Secret comes later).
    ref = env_of(job)["DATABASE_URL"]["secretKeyRef"]
    hook_secret = only(docs, "Secret", ref["name"])
    annotations = hook_secret["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(annotations["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    )
    url = base64.b64decode(hook_secret["data"][ref["key"]]).decode()
    assert url == REQUIRED["database"]["url"]


def secret_values(values: Any) -> list[str]:
    """Every sentinel secret in a values document (non-secret settings are not sentinels)."""
    if isinstance(values, dict):
        return [s for v in values.values() for s in secret_values(v)]
    return [values] if isinstance(values, str) and "sentinel" in values else []


@pytest.mark.parametrize("case", CASES)
def test_secrets_go_to_the_secret_and_never_to_the_config_map(rendered, case):
    docs = rendered[case]
    config = only(docs, "ConfigMap", f"{RELEASE}-incidentfox")["data"]
    stored = {
        k: base64.b64decode(v).decode()
        for k, v in only(docs, "Secret", f"{RELEASE}-incidentfox")["data"].items()
    }
    sentinels = secret_values(CASES[case])
    assert sentinels
    for sentinel in sentinels:
        assert not [k for k, v in config.items() if sentinel in v], sentinel
        assert sentinel in stored.values()
    assert not set(config) & set(stored)
    in_cluster = (config["HOST"], config["LOCAL_WORKSPACE"], config["INCIDENTFOX_DEMO"])
    assert in_cluster == ("0.0.0.0", "0", "0")


def test_existing_secret_replaces_the_chart_secret_and_refuses_inline_ones():
    docs = render({"existingSecret": "ifx-secrets"})
    assert not [d for d in docs if d["kind"] == "Secret"]
    bot = only(docs, "Deployment", f"{RELEASE}-incidentfox-bot")
    assert {"secretRef": {"name": "ifx-secrets"}} in container(bot)["envFrom"]
    job = only(docs, "Job", f"{RELEASE}-incidentfox-migrate")
    assert env_of(job)["DATABASE_URL"] == {"secretKeyRef": {"name": "ifx-secrets", "key": "DATABASE_URL"}}
    with pytest.raises(helm.HelmRenderError, match="existingSecret is set, so OPENAI_API_KEY"):
        render({"existingSecret": "ifx-secrets", "openai": {"apiKey": "sk-inline"}})


def test_a_missing_secret_key_fails_the_render_in_plain_words():
    with pytest.raises(helm.HelmRenderError, match="secretKey is required"):
        render({key: value for key, value in REQUIRED.items() if key != "secretKey"})


@pytest.mark.parametrize(
    ("values", "typo"),
    [
        ({"bot": {"replicass": 3}}, "replicass"),
        ({"dedicatedTeam": [{"team": "acme/payments"}]}, "dedicatedTeam"),
        ({"dedicatedTeams": [{"team": "acme/payments", "replica": 2}]}, "replica"),
        ({"workers": {"autoscaling": {"queue": {"target": 5}}}}, "target"),
    ],
)
def test_values_schema_rejects_a_typo(values, typo):
    with pytest.raises(helm.HelmValuesError, match=rf"additional properties '{typo}' not allowed"):
        render({**REQUIRED, **values})


@pytest.mark.parametrize("case", CASES)
def test_every_container_runs_non_root_with_a_read_only_root(rendered, case):
    workloads = pod_templates(rendered[case])
    assert workloads
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        security = container(workload)["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        mounts = {m["mountPath"]: m["name"] for m in container(workload)["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert {"/data", "/tmp"} <= set(mounts)
        assert all("emptyDir" in volumes[mounts[path]] for path in ("/data", "/tmp"))


def test_deployments_probe_healthz_and_readyz(rendered):
    for deployment in (d for d in rendered["dedicated"] if d["kind"] == "Deployment"):
        main = container(deployment)
        assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert {"name": "http", "containerPort": 3000, "protocol": "TCP"} in main["ports"]


def recording_rule(docs: list[Doc]) -> Callable[[str], str]:
    """The PrometheusRule's rewrite of the app's `stream` label, as a function (RE2 anchors regexes)."""
    rule = only(docs, "PrometheusRule", f"{RELEASE}-incidentfox")["spec"]["groups"][0]["rules"][0]
    assert rule["record"] == "incidentfox:queue_waiting:max"
    found = re.search(r'"stream", "([^"]+)", "stream", "([^"]+)"', rule["expr"])
    assert found, rule["expr"]
    template, pattern = found.groups()

    def rewrite(stream: str) -> str:
        match = re.fullmatch(pattern, stream)
        return re.sub(r"\$(\d)", lambda m: match.group(int(m.group(1))), template) if match else stream

    return rewrite


def test_hpas_scale_each_pool_on_its_own_queue_stream(rendered):
    docs = rendered["dedicated"]
    as_labelled = recording_rule(docs)
    for name, stream in (
        (worker(), SHARED_STREAM),
        (worker("acme-payments"), team_stream("acme", "payments")),
    ):
        metrics = only(docs, "HorizontalPodAutoscaler", name)["spec"]["metrics"]
        assert {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
        } in metrics
        [external] = [m["external"] for m in metrics if m["type"] == "External"]
        assert external["metric"]["name"] == "incidentfox_queue_waiting"
        label = external["metric"]["selector"]["matchLabels"]["stream"]
        assert label == as_labelled(stream)
        assert LABEL_VALUE.fullmatch(label), f"{label!r} is not a valid label value"
    assert as_labelled(team_stream("acme", "payments")) == "team.acme.payments"
    # Without the adapter the queue metric stays off: only CPU.
    shared = only(rendered["shared"], "HorizontalPodAutoscaler", worker())["spec"]["metrics"]
    assert [m["type"] for m in shared] == ["Resource"]


def test_sandbox_pods_can_reach_the_worker_that_made_them_and_nothing_needs_more_rights(rendered):
    docs = rendered["dedicated"]
    config = only(docs, "ConfigMap", f"{RELEASE}-incidentfox")["data"]
    assert config["SANDBOX_NAMESPACE"] == "ifx-sandboxes"
    assert config["SANDBOX_PROXY_NAMESPACE"] == NAMESPACE
    proxy_labels = proxy_pod_labels(config["SANDBOX_PROXY_POD_LABELS"])
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        is_worker = container(deployment)["args"][:3] == ["serve", "--role", "worker"]
        assert (proxy_labels.items() <= labels.items()) == is_worker
        assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] == is_worker
        if is_worker:
            assert env_of(deployment)["SANDBOX_PROXY_HOST"] == {"fieldRef": {"fieldPath": "status.podIP"}}
            assert {"name": "model-proxy", "containerPort": 8788, "protocol": "TCP"} in container(deployment)[
                "ports"
            ]
    role = only(docs, "Role", f"{RELEASE}-incidentfox-sandboxes")
    assert role["metadata"]["namespace"] == "ifx-sandboxes"
    granted = {(res, verb) for rule in role["rules"] for res in rule["resources"] for verb in rule["verbs"]}
    # What backends/kubernetes.py calls.
    needed = {("pods", v) for v in ("create", "get", "patch", "delete")}
    needed |= {("pods/exec", "create"), ("events", "list")}
    needed |= {("networkpolicies", v) for v in ("create", "delete")}
    assert needed <= granted
    binding = only(docs, "RoleBinding", f"{RELEASE}-incidentfox-sandboxes")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{RELEASE}-incidentfox", "namespace": NAMESPACE}
    ]
    policy = only(docs, "NetworkPolicy", f"{RELEASE}-incidentfox-worker")["spec"]
    [from_sandboxes] = [rule for rule in policy["ingress"] if rule["ports"][0]["port"] == "model-proxy"]
    peer = from_sandboxes["from"][0]
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ifx-sandboxes"}
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "sandbox"


def test_custom_resources_point_at_what_the_chart_renders(rendered):
    docs = rendered["dedicated"]
    monitor = only(docs, "ServiceMonitor", f"{RELEASE}-incidentfox")
    [service] = [
        d
        for d in docs
        if d["kind"] == "Service"
        and monitor["spec"]["selector"]["matchLabels"].items() <= d["metadata"]["labels"].items()
    ]
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    scraped = [
        d["metadata"]["name"]
        for d in pod_templates(docs)
        if service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert sorted(scraped) == sorted(d["metadata"]["name"] for d in docs if d["kind"] == "Deployment")
    assert not [d for d in rendered["shared"] if d["kind"] in OPERATOR_KINDS]


def ingress_paths(docs: list[Doc]) -> set[str]:
    ingress = only(docs, "Ingress", f"{RELEASE}-incidentfox")
    return {p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}


def test_socket_mode_keeps_the_service_and_publishes_only_the_webhooks(rendered):
    docs = rendered["socket"]
    assert only(docs, "Service", f"{RELEASE}-incidentfox")["spec"]["ports"][0]["targetPort"] == "http"
    assert ingress_paths(docs) == {"/webhooks"}
    http_mode = render({**REQUIRED, "ingress": {"enabled": True}})
    assert ingress_paths(http_mode) == {"/webhooks", "/slack"}


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped and continuation lines joined."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    steps = []
    for line in "\n".join(lines).replace("\\\n", " ").splitlines():
        if line.strip():
            instruction, arguments = line.split(None, 1)
            steps.append((instruction.upper(), arguments.strip()))
    return steps


def last(steps: list[tuple[str, str]], instruction: str) -> str:
    return [args for op, args in steps if op == instruction][-1]


def runtime_stage(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (op, _) in enumerate(steps) if op == "FROM"]
    return steps[starts[-1] :]


def test_app_image_is_non_root_with_the_entrypoint_and_a_healthcheck():
    steps = dockerfile(ROOT / "deploy" / "Dockerfile")
    assert len([op for op, _ in steps if op == "FROM"]) == 2, "multi-stage: builder and runtime"
    runtime = runtime_stage(steps)
    assert runtime[0][1] == "python:3.11-slim"
    uid = last(runtime, "USER").split(":")[0]
    assert uid.isdigit() and int(uid) > 0
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert int(uid) == chart_values["podSecurityContext"]["runAsUser"]
    assert yaml.safe_load(last(runtime, "ENTRYPOINT")) == ["incidentfox"]
    assert yaml.safe_load(last(runtime, "CMD")) == ["serve"]
    assert "/healthz" in last(runtime, "HEALTHCHECK") and "python" in last(runtime, "HEALTHCHECK")
    env = " ".join(args for op, args in runtime if op == "ENV")
    for setting in ("HOST=0.0.0.0", "LOCAL_WORKSPACE=0", "INCIDENTFOX_DEMO=0"):
        assert setting in env.split()
    assert any(op == "RUN" and re.search(r"apt-get install .*\bgit\b", args) for op, args in runtime)
    assert any(op == "COPY" and args.startswith("--from=builder /opt/venv") for op, args in runtime)


def test_sandbox_image_matches_what_the_kubernetes_backend_runs():
    steps = dockerfile(ROOT / "deploy" / "sandbox" / "Dockerfile")
    # The CLI version claude-agent-sdk bundles: the protocol the SDK speaks.
    assert last(steps, "ARG") == f"CLAUDE_CODE_VERSION={__cli_version__}"
    pods = PodSettings(namespace="sandboxes", image="sre-sandbox")
    assert last(steps, "USER") == f"{pods.run_as}:{pods.run_as}"
    assert last(steps, "WORKDIR") == WORKDIR
    cli = Settings.model_fields["sandbox_cli_path"].default
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert cli == pods.cli_path == chart_values["sandbox"]["cliPath"] == "/usr/local/bin/claude"
    runs = " ".join(args for op, args in steps if op == "RUN")
    assert "npm install --global" in runs and "@anthropic-ai/claude-code@" in runs
    assert f"{cli} --version" in runs
    assert re.search(r"apt-get install .*\bpython3\b.*\bgit\b", runs)


def test_dockerignore_keeps_the_venv_data_and_secrets_out_of_the_build_context():
    ignored = {ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip()}
    assert {".venv", ".git", "data", ".env"} <= ignored
