"""The Kubernetes sandbox is a hardened pod fenced by a NetworkPolicy, created, waited for, exec'd
into, touched and deleted through the real ``kubernetes`` client against the emulator."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from incidentfox.emulators.kubernetes import KubernetesEmulator
from incidentfox.emulators.kubernetes_exec import ExecCall
from incidentfox.sandboxes.backends.base import GIB, MIB, ProxyEndpoint, SandboxSpec, SandboxUnavailable
from incidentfox.sandboxes.backends.kubernetes import KubernetesBackend
from incidentfox.sandboxes.backends.kubernetes_manifests import (
    PodSettings,
    label_value,
    network_policy_manifest,
)

NAMESPACE = "incidentfox-sandboxes"
THREAD = "C0123ABC:1712345678.000100"
PROXY = ProxyEndpoint(host="10.96.0.42", port=8443)


def _spec(**changes: Any) -> SandboxSpec:
    fields: dict[str, Any] = {
        "session_id": "sess-7",
        "org_id": "acme",
        "team_id": "payments team",
        "run_id": "run-42",
        "thread_key": THREAD,
        "proxy": PROXY,
        "env": {"SANDBOX_GREETING": "hello"},
        "workdir_bytes": 3 * GIB,
        "tmp_bytes": 128 * MIB,
        "memory_bytes": 2 * GIB,
        "cpus": 1.5,
        "runtime_class": "gvisor",
    }
    fields.update(changes)
    return SandboxSpec(**fields)


@pytest.fixture
async def emulator() -> AsyncIterator[KubernetesEmulator]:
    world = {"namespace": NAMESPACE, "namespaces": [NAMESPACE], "nodes": [{"name": "sandbox-node-1"}]}
    async with KubernetesEmulator(world) as k8s:
        yield k8s


@pytest.fixture
def api(emulator: KubernetesEmulator) -> client.ApiClient:
    cfg = client.Configuration(host=emulator.api_url)
    cfg.api_key, cfg.api_key_prefix = {"authorization": emulator.token}, {"authorization": "Bearer"}
    return client.ApiClient(cfg)


@pytest.fixture
def backend(api: client.ApiClient, tmp_path: Path) -> KubernetesBackend:
    settings = PodSettings(namespace=NAMESPACE, image="ghcr.io/incidentfox/sandbox:1.0")
    return KubernetesBackend(
        api, settings, ready_timeout_s=5, poll_interval_s=0.05, runtime_dir=tmp_path / "runtime"
    )


def _created(emulator: KubernetesEmulator, kind: str) -> list[dict[str, Any]]:
    return [body for body in emulator.pods.created if body["kind"] == kind]


async def _names(api: client.ApiClient) -> tuple[list[str], list[str]]:
    def read() -> tuple[list[str], list[str]]:
        pods: list[Any] = client.CoreV1Api(api).list_namespaced_pod(NAMESPACE).items
        policies: list[Any] = client.NetworkingV1Api(api).list_namespaced_network_policy(NAMESPACE).items
        return [p.metadata.name for p in pods], [p.metadata.name for p in policies]

    return await asyncio.to_thread(read)


async def test_the_sandbox_pod_carries_every_hardening_field(
    emulator: KubernetesEmulator, backend: KubernetesBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INCIDENTFOX_CANARY_TOKEN", "host-only")
    sandbox = await backend.create(_spec())
    [pod] = _created(emulator, "Pod")
    spec = pod["spec"]
    [container] = spec["containers"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == 1000
    assert security["allowPrivilegeEscalation"] is False
    assert security["privileged"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["readOnlyRootFilesystem"] is True
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["runtimeClassName"] == "gvisor"
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert spec["hostNetwork"] is False and spec["hostPID"] is False and spec["hostIPC"] is False
    assert spec["restartPolicy"] == "Never"
    limits = {"cpu": "1500m", "memory": str(2 * GIB)}
    assert container["resources"] == {"requests": limits, "limits": limits}
    assert spec["volumes"] == [
        {"name": "work", "emptyDir": {"sizeLimit": str(3 * GIB)}},
        {"name": "tmp", "emptyDir": {"sizeLimit": str(128 * MIB)}},
    ]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/work", "/tmp"}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {"HOME": "/work/.home", "TMPDIR": "/tmp", "LANG": "C.UTF-8", "SANDBOX_GREETING": "hello"}
    labels = pod["metadata"]["labels"]
    assert labels["incidentfox.dev/org"] == "acme"
    assert labels["incidentfox.dev/team"].startswith("payments-team-")
    assert labels["incidentfox.dev/run"] == "run-42"
    assert labels["incidentfox.dev/thread"] == hashlib.sha256(THREAD.encode()).hexdigest()[:32]
    assert labels["incidentfox.dev/sandbox"] == sandbox.id
    assert THREAD not in str(labels)
    assert sandbox.proxy_url == "http://10.96.0.42:8443"
    assert (sandbox.workdir, sandbox.cwd) == ("/work", "/work")


async def test_the_network_policy_admits_only_the_proxy_and_exists_before_the_pod(
    emulator: KubernetesEmulator, backend: KubernetesBackend
) -> None:
    sandbox = await backend.create(_spec())
    [policy] = _created(emulator, "NetworkPolicy")
    [pod] = _created(emulator, "Pod")
    creations = [path for method, path in emulator.requests if method == "POST"]
    assert creations == [
        f"/apis/networking.k8s.io/v1/namespaces/{NAMESPACE}/networkpolicies",
        f"/api/v1/namespaces/{NAMESPACE}/pods",
    ]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert all(pod["metadata"]["labels"][k] == v for k, v in selector.items())
    assert selector == {"incidentfox.dev/sandbox": sandbox.id}
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["ingress"] == []
    assert policy["spec"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": "10.96.0.42/32"}}], "ports": [{"protocol": "TCP", "port": 8443}]}
    ]


def test_the_policy_selects_proxy_pods_and_allows_dns_only_for_a_proxy_host_name() -> None:
    settings = PodSettings(namespace=NAMESPACE, image="sandbox:1")
    by_labels = ProxyEndpoint(
        host="incidentfox-proxy.incidentfox.svc",
        port=8080,
        pod_labels={"app": "proxy"},
        namespace="incidentfox",
    )
    policy = network_policy_manifest(_spec(proxy=by_labels), "sbx-1", "incidentfox-sbx-1", settings)
    proxy_rule, dns_rule = policy["spec"]["egress"]
    assert proxy_rule["to"] == [
        {
            "podSelector": {"matchLabels": {"app": "proxy"}},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "incidentfox"}},
        }
    ]
    assert {p["port"] for p in dns_rule["ports"]} == {53}
    offline = network_policy_manifest(_spec(proxy=None), "sbx-2", "incidentfox-sbx-2", settings)
    assert offline["spec"]["egress"] == []
    with pytest.raises(ValueError, match="pods' labels or an IP address"):
        network_policy_manifest(_spec(proxy=ProxyEndpoint(host="proxy", port=1)), "s", "n", settings)


def test_label_values_are_kept_when_valid_and_hashed_when_not() -> None:
    assert label_value("team-a_1.x") == "team-a_1.x"
    hashed = label_value("Payments / EU (prod)")
    assert hashed.startswith("Payments---EU--prod-")
    assert len(label_value("x" * 200)) <= 63


async def test_create_waits_until_the_pod_is_ready(
    emulator: KubernetesEmulator, api: client.ApiClient, backend: KubernetesBackend
) -> None:
    emulator.pods.start_delay_s = 0.4
    started = time.monotonic()
    sandbox = await backend.create(_spec())
    waited = time.monotonic() - started
    pod: Any = await asyncio.to_thread(
        client.CoreV1Api(api).read_namespaced_pod, sandbox.details["pod"], NAMESPACE
    )
    assert waited >= 0.4
    assert pod.status.phase == "Running"
    assert pod.spec.node_name == "sandbox-node-1"
    assert any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)


async def test_exec_returns_output_exit_code_and_stdin(
    emulator: KubernetesEmulator, backend: KubernetesBackend
) -> None:
    sandbox = await backend.create(_spec())
    echoed = await backend.exec(sandbox, ["echo", "hello", "sandbox"], timeout_s=10)
    env = await backend.exec(
        sandbox, ["env"], timeout_s=10, env={"ANTHROPIC_BASE_URL": "http://10.96.0.42:8443"}
    )
    piped = await backend.exec(sandbox, ["cat"], timeout_s=10, stdin=b"line one\nline two\n")
    failed = await backend.exec(sandbox, ["false"], timeout_s=10)
    unknown = await backend.exec(sandbox, ["make", "build"], timeout_s=10)
    assert (echoed.exit_code, echoed.stdout) == (0, "hello sandbox\n")
    assert "SANDBOX_GREETING=hello" in env.stdout
    assert "ANTHROPIC_BASE_URL=http://10.96.0.42:8443" in env.stdout
    assert piped.stdout == "line one\nline two\n"
    assert failed.exit_code == 1 and not failed.timed_out
    assert unknown.exit_code == 127 and "not scripted" in unknown.stderr
    exec_paths = [path for method, path in emulator.requests if "/exec?" in path]
    assert all("command=timeout&command=-s&command=KILL" in path for path in exec_paths)


async def test_exec_is_killed_at_its_timeout(backend: KubernetesBackend) -> None:
    sandbox = await backend.create(_spec())
    started = time.monotonic()
    result = await backend.exec(sandbox, ["sleep", "30"], timeout_s=1)
    assert result.timed_out
    assert time.monotonic() - started < 5


async def test_a_scripted_exec_handler_sees_the_pod_container_and_command(
    emulator: KubernetesEmulator, backend: KubernetesBackend
) -> None:
    seen: list[tuple[str, str, list[str]]] = []

    async def handler(call: ExecCall) -> int:
        seen.append((call.pod, call.container, call.command))
        await call.stderr("warning: scripted\n")
        return 3

    emulator.pods.exec_handler = handler
    sandbox = await backend.create(_spec())
    result = await backend.exec(sandbox, ["git", "status"], timeout_s=10)
    assert seen == [(sandbox.details["pod"], "sandbox", ["timeout", "-s", "KILL", "10", "git", "status"])]
    assert (result.exit_code, result.stderr) == (3, "warning: scripted\n")


async def test_an_unschedulable_pod_ends_in_the_schedulers_words_and_leaves_nothing(
    emulator: KubernetesEmulator, api: client.ApiClient, backend: KubernetesBackend
) -> None:
    emulator.pods.unschedulable = "0/3 nodes are available: 3 Insufficient memory."
    backend.ready_timeout_s = 0.5
    with pytest.raises(SandboxUnavailable) as refused:
        await backend.create(_spec())
    assert refused.value.message == (
        "the sandbox pod could not be scheduled: 0/3 nodes are available: 3 Insufficient memory."
    )
    assert await _names(api) == ([], [])


async def test_a_missing_namespace_is_explained(api: client.ApiClient, tmp_path: Path) -> None:
    backend = KubernetesBackend(api, PodSettings(namespace="nowhere", image="sandbox:1"), ready_timeout_s=1)
    with pytest.raises(SandboxUnavailable, match="the sandbox namespace nowhere does not exist"):
        await backend.create(_spec())


async def test_touch_stamps_the_last_active_annotation(
    api: client.ApiClient, backend: KubernetesBackend
) -> None:
    sandbox = await backend.create(_spec())
    before = sandbox.last_active_at
    await asyncio.sleep(0.01)
    await backend.touch(sandbox)
    pod: Any = await asyncio.to_thread(
        client.CoreV1Api(api).read_namespaced_pod, sandbox.details["pod"], NAMESPACE
    )
    assert sandbox.last_active_at > before
    assert pod.metadata.annotations["incidentfox.dev/last-active"] == sandbox.last_active_at.isoformat()


async def test_destroy_removes_the_pod_and_its_policy(
    api: client.ApiClient, backend: KubernetesBackend
) -> None:
    sandbox = await backend.create(_spec())
    assert await _names(api) == ([sandbox.details["pod"]], [sandbox.details["policy"]])
    await backend.destroy(sandbox)
    assert await _names(api) == ([], [])
    await backend.destroy(sandbox)
    with pytest.raises(SandboxUnavailable, match="pod is gone"):
        await backend.exec(sandbox, ["echo", "late"], timeout_s=5)


async def test_wrap_relays_stdio_to_a_long_running_process_in_the_pod(
    backend: KubernetesBackend, tmp_path: Path
) -> None:
    sandbox = await backend.create(_spec())
    command = await backend.wrap(sandbox, ["cat"])
    launcher = command.write_launcher(tmp_path / "attach")
    process = await asyncio.create_subprocess_exec(
        str(launcher),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ},
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(b'{"type": "user"}\n')
    await process.stdin.drain()
    first = await asyncio.wait_for(process.stdout.readline(), 15)
    process.stdin.write(b'{"type": "interrupt"}\n')
    process.stdin.close()
    rest = await asyncio.wait_for(process.stdout.read(), 15)
    assert await asyncio.wait_for(process.wait(), 15) == 0
    assert first == b'{"type": "user"}\n'
    assert rest == b'{"type": "interrupt"}\n'
    assert "kubernetes_attach" in " ".join(command.argv)
    assert os.stat(command.env["INCIDENTFOX_SANDBOX_KUBECONFIG"]).st_mode & 0o077 == 0
