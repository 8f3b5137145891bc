"""The ``kubernetes`` sandbox backend as an installation turns it on (``SANDBOX_*`` settings), through
the SRE agent's sessions, against the Kubernetes emulator: a team asking for it gets a hardened pod
whose NetworkPolicy allows only the model proxy (served on TCP for pods), the CLI is the image's, and
the reaper's ``destroy_row`` deletes pod and policy. Without the settings, the team is told in plain
words what is missing. (The emulator runs no containers, so the CLI itself cannot start in the pod:
that too must end in plain words with the session kept for the next message.)"""

from __future__ import annotations

import asyncio
import io
import socket
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from incidentfox.agents.events import ProgressEvent
from incidentfox.bot.runtime import Runtime, build_runtime
from incidentfox.emulators.github import GitHubEmulator
from incidentfox.emulators.kubernetes import KubernetesEmulator
from incidentfox.emulators.kubernetes_exec import ExecCall
from incidentfox.sandboxes.backends.base import SandboxSpec, SandboxUnavailable
from incidentfox.sandboxes.kubernetes_setup import KUBERNETES_OFF, kubernetes_sandboxes, proxy_pod_labels
from incidentfox.sandboxes.service import SreAgent
from incidentfox.sandboxes.session import SandboxSettings
from incidentfox.sandboxes.session_checkout import check_out_repo
from incidentfox.sandboxes.store import SandboxStore, SessionPlace
from tests.conftest import make_settings

NAMESPACE = "incidentfox-sandboxes"
PLACE = SessionPlace("acme", "checkout", "T1:C1:1700000000.000200", "C1", "1700000000.000200")
KUBERNETES = SandboxSettings(backend="kubernetes", ttl_s=3600, runtime_class="gvisor")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def k8s() -> AsyncIterator[KubernetesEmulator]:
    world = {"namespace": NAMESPACE, "namespaces": [NAMESPACE], "nodes": [{"name": "sandbox-node-1"}]}
    async with KubernetesEmulator(world) as emulator:
        yield emulator


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    built = await build_runtime(
        make_settings(f"sqlite+aiosqlite:///{tmp_path}/incidentfox.db", tmp_path), migrate=True
    )
    try:
        yield built
    finally:
        await built.close()


def _settings(tmp_path: Path, k8s: KubernetesEmulator, port: int, **changes: Any) -> Any:
    fields: dict[str, Any] = {
        "anthropic_api_key": "sk-ant-real-key-never-in-a-pod",
        "sandbox_namespace": NAMESPACE,
        "sandbox_kubeconfig": str(k8s.write_kubeconfig(tmp_path / "sandbox-kubeconfig")),
        "sandbox_proxy_host": "10.96.0.42",
        "sandbox_proxy_port": port,
        "sandbox_image": "registry.example/sre-sandbox:1.2",
    }
    fields.update(changes)
    return make_settings(f"sqlite+aiosqlite:///{tmp_path}/unused.db", tmp_path, **fields)


def test_pod_labels_are_read_as_key_value_pairs() -> None:
    assert proxy_pod_labels("app.kubernetes.io/name=incidentfox, tier=bot") == {
        "app.kubernetes.io/name": "incidentfox",
        "tier": "bot",
    }
    with pytest.raises(ValueError, match="is not key=value"):
        proxy_pod_labels("incidentfox")


async def test_without_the_settings_the_team_is_told_what_is_missing(
    tmp_path: Path, runtime: Runtime
) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/unused.db", tmp_path)
    assert kubernetes_sandboxes(settings, tmp_path / "run") is None
    agent = SreAgent(SandboxStore(runtime.sessions), tmp_path, api_key="sk-ant-x")
    with pytest.raises(SandboxUnavailable) as refused:
        agent.backend_for("kubernetes")
    assert refused.value.message == KUBERNETES_OFF
    assert "SANDBOX_NAMESPACE" in KUBERNETES_OFF and "sandbox.backend: local" in KUBERNETES_OFF


async def test_a_kubernetes_session_gets_a_hardened_pod_reaching_only_the_proxy(
    tmp_path: Path, runtime: Runtime, k8s: KubernetesEmulator
) -> None:
    port = _free_port()
    settings = _settings(tmp_path, k8s, port)
    pods = kubernetes_sandboxes(settings, tmp_path / "run")
    assert pods is not None
    store = SandboxStore(runtime.sessions)
    agent = SreAgent(store, tmp_path, api_key="sk-ant-real-key-never-in-a-pod", kubernetes=pods)
    launched: list[ExecCall] = []

    async def no_cli_in_the_emulator(call: ExecCall) -> int:
        launched.append(call)
        return 127

    k8s.pods.exec_handler = no_cli_in_the_emulator
    await agent.start()
    events: list[ProgressEvent] = []
    try:
        async with aiohttp.ClientSession() as http:
            refused = await http.post(f"http://127.0.0.1:{port}/v1/messages", json={})
            assert refused.status == 401, "the proxy listens for pods on TCP and wants a session token"

        answer = await agent.sessions.ask(
            PLACE, "why does the build fail?", requester="U1", sandbox_settings=KUBERNETES, emit=events.append
        )

        assert answer.error is not None and "Traceback" not in answer.error
        [pod] = [b for b in k8s.pods.created if b["kind"] == "Pod"]
        [policy] = [b for b in k8s.pods.created if b["kind"] == "NetworkPolicy"]
        spec = pod["spec"]
        assert spec["runtimeClassName"] == "gvisor"
        assert spec["containers"][0]["image"] == "registry.example/sre-sandbox:1.2"
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert pod["metadata"]["labels"]["incidentfox.dev/team"] == "checkout"
        [egress] = policy["spec"]["egress"]
        assert egress["ports"] == [{"protocol": "TCP", "port": port}]
        assert egress["to"][0]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "incidentfox"}}
        cli_runs = [c for c in launched if "/usr/local/bin/claude" in c.command]
        assert cli_runs, f"the image's CLI was started in the pod: {[c.command for c in launched]}"
        assert "sk-ant-real-key-never-in-a-pod" not in repr([(c.command, c.env) for c in launched])
        assert any("http://10.96.0.42:" in part for c in cli_runs for part in c.command), "proxy URL"

        row = await store.for_thread(PLACE.thread_key)
        assert row is not None and row.backend == "kubernetes"
        assert row.sandbox_ref == f"{NAMESPACE}/{pod['metadata']['name']}"
        await agent.sessions.destroy_row(row)
        left = (await asyncio.to_thread(pods.backend.core.list_namespaced_pod, NAMESPACE)).items
        listing = pods.backend.networking.list_namespaced_network_policy
        policies = (await asyncio.to_thread(listing, NAMESPACE)).items
        assert (left, policies) == ([], []), "the reaper's destroy deletes pod and policy"
    finally:
        await agent.stop()


async def test_a_pod_gets_the_repo_as_a_tar_through_exec_and_never_the_token(
    tmp_path: Path, k8s: KubernetesEmulator
) -> None:
    settings = _settings(tmp_path, k8s, _free_port())
    pods = kubernetes_sandboxes(settings, tmp_path / "run")
    assert pods is not None
    received: list[tuple[list[str], bytes]] = []

    async def tar_in_the_pod(call: ExecCall) -> int:
        chunks = []
        while (chunk := await call.read_stdin()) is not None:
            chunks.append(chunk)
        received.append((call.command, b"".join(chunks)))
        return 0

    k8s.pods.exec_handler = tar_in_the_pod
    spec = SandboxSpec(session_id="s1", org_id="acme", team_id="checkout", run_id="s1", thread_key="t")
    async with GitHubEmulator() as gh:
        gh.seed_git_repo("acme/checkout", {"Makefile": "build:\n\tgo build\n"})
        config = {
            "integrations": {"github": {"api_url": gh.api_url, "token": gh.token}},
            "routing": {"github_repos": ["acme/checkout"]},
        }
        sandbox = await pods.backend.create(spec)
        events: list[ProgressEvent] = []
        try:
            note = await check_out_repo(
                pods.backend, sandbox, "fix the build", config, events.append, max_bytes=50 * 2**20
            )
        finally:
            await pods.backend.destroy(sandbox)

    assert "checked out the repository acme/checkout for you in ./checkout" in note
    [(command, archive)] = [(c, data) for c, data in received if "tar" in " ".join(c)]
    assert command[-4:] == ["-f", "-", "-C", "/work"]
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = tar.getnames()
        makefile = tar.extractfile("checkout/Makefile")
        assert makefile is not None and makefile.read() == b"build:\n\tgo build\n"
    assert "checkout/.git/config" in names
    assert gh.token.encode() not in archive
    assert [e.kind for e in events] == ["tool_start", "tool_end"]
