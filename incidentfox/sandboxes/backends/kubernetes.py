"""The ``kubernetes`` sandbox: one hardened pod per session, fenced by its own NetworkPolicy.

``create`` makes the NetworkPolicy first (the pod never runs unfenced), then the pod
(``kubernetes_manifests`` says what hardening both carry), and waits for it to be Ready. A pod the
scheduler cannot place ends in ``SandboxUnavailable`` quoting the scheduler; an image that cannot be
pulled or a pod that fails ends the wait at once; either way nothing is left behind. ``exec`` goes
through ``pods/exec`` (the client's WebSocket ``stream``), wrapped in ``timeout -s KILL`` so the
command dies in the pod too at its deadline. ``wrap`` returns a host command
(``kubernetes_attach``) that relays its stdio to a process in the pod. ``touch`` stamps the
``incidentfox.dev/last-active`` annotation; ``destroy`` deletes pod and policy.

The ``kubernetes`` client is synchronous, so every call runs in a small thread pool of its own. The
identity needs, in the sandbox namespace: pods (create, get, patch, delete), pods/exec (create, get),
networkpolicies (create, delete), events (list).

Extra environment given to ``exec`` or ``wrap`` travels as ``env NAME=value`` in the exec request's
command, which the API server's audit log records: put only what must be there (a short-lived
per-session proxy token, for example), never an integration credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from incidentfox.sandboxes.backends.base import (
    ExecResult,
    LaunchCommand,
    Sandbox,
    SandboxBackend,
    SandboxSpec,
    SandboxUnavailable,
    checked_env,
    now_utc,
)
from incidentfox.sandboxes.backends.kubernetes_manifests import (
    LAST_ACTIVE,
    WORKDIR,
    PodSettings,
    network_policy_manifest,
    pod_manifest,
)
from incidentfox.sandboxes.backends.processes import MAX_OUTPUT_BYTES

T = TypeVar("T")
_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="sandbox-kubernetes")
_FATAL_WAITING = {
    "ErrImagePull": "its image could not be pulled",
    "ImagePullBackOff": "its image could not be pulled",
    "InvalidImageName": "its image name is invalid",
    "CreateContainerConfigError": "its container could not be configured",
    "CreateContainerError": "its container could not be created",
}
KUBECONFIG_ENV = "INCIDENTFOX_SANDBOX_KUBECONFIG"
_HANDSHAKE = re.compile(r"Handshake status (\d{3})")


def _status_of(exc: ApiException) -> int:
    """The HTTP status, also when the WebSocket handshake failed (the client then reports status 0)."""
    if exc.status:
        return int(exc.status)
    found = _HANDSHAKE.search(str(exc.reason or ""))
    return int(found.group(1)) if found else 0


def _plain(exc: ApiException, namespace: str) -> str:
    """An API failure in words for the thread."""
    status = _status_of(exc)
    if status == 403:
        return (
            f"IncidentFox's Kubernetes identity may not manage sandboxes in namespace {namespace}: grant it "
            "pods, pods/exec and networkpolicies there."
        )
    if status == 404 and "namespaces" in str(exc.body or ""):
        return f"the sandbox namespace {namespace} does not exist; create it or change the sandbox settings."
    reason = str(exc.reason or "no answer").split(" -+-+- ")[0]
    if not status:
        return f"the Kubernetes API did not answer ({reason})."
    return f"the Kubernetes API refused the sandbox ({status} {reason})."


class KubernetesBackend(SandboxBackend):
    """Sandboxes as pods in ``settings.namespace``, through ``api``."""

    name = "kubernetes"
    files_on_host = False

    def __init__(
        self,
        api: k8s.ApiClient,
        settings: PodSettings,
        *,
        ready_timeout_s: float = 120.0,
        poll_interval_s: float = 0.5,
        kubeconfig: Path | None = None,
        runtime_dir: Path | None = None,
    ) -> None:
        """``kubeconfig`` (or, without it, a file written into ``runtime_dir`` from ``api``'s settings)
        is what ``wrap``'s host command connects with."""
        self.api = api
        self.settings = settings
        self.core = k8s.CoreV1Api(api)
        self.networking = k8s.NetworkingV1Api(api)
        self.ready_timeout_s = ready_timeout_s
        self.poll_interval_s = poll_interval_s
        self.kubeconfig = kubeconfig
        self.runtime_dir = runtime_dir
        self.request_timeout = (5.0, 30.0)

    def cli_path(self) -> str | None:
        return self.settings.cli_path

    async def _call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        call = functools.partial(method, *args, _request_timeout=self.request_timeout, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(_POOL, call)

    async def create(self, spec: SandboxSpec) -> Sandbox:
        sandbox_id = "sbx-" + secrets.token_hex(6)
        name = f"incidentfox-{sandbox_id}"
        namespace = self.settings.namespace
        now = now_utc()
        try:
            policy = network_policy_manifest(spec, sandbox_id, name, self.settings)
            pod = pod_manifest(spec, sandbox_id, name, self.settings, now.isoformat())
        except ValueError as exc:
            raise SandboxUnavailable(f"the sandbox pod cannot be described: {exc}") from exc
        sandbox = Sandbox(
            id=sandbox_id,
            backend=self.name,
            workdir=WORKDIR,
            cwd=WORKDIR,
            created_at=now,
            last_active_at=now,
            labels=dict(pod["metadata"]["labels"]),
            spec=spec,
            proxy_url=f"http://{spec.proxy.host}:{spec.proxy.port}"
            if spec.proxy and spec.proxy.host
            else None,
            details={
                "namespace": namespace,
                "pod": name,
                "policy": name,
                "container": self.settings.container,
            },
        )
        try:
            await self._call(self.networking.create_namespaced_network_policy, namespace, policy)
            await self._call(self.core.create_namespaced_pod, namespace, pod)
            await self._wait_ready(sandbox)
        except ApiException as exc:
            await asyncio.shield(self._clean_up(sandbox))
            raise SandboxUnavailable(_plain(exc, namespace)) from exc
        except BaseException:
            await asyncio.shield(self._clean_up(sandbox))
            raise
        return sandbox

    async def _clean_up(self, sandbox: Sandbox) -> None:
        """``destroy`` after a failed ``create``: the first error is the one worth reporting."""
        with contextlib.suppress(SandboxUnavailable, ApiException):
            await self.destroy(sandbox)

    async def _wait_ready(self, sandbox: Sandbox) -> None:
        name, namespace = sandbox.details["pod"], sandbox.details["namespace"]
        deadline = time.monotonic() + self.ready_timeout_s
        unscheduled: str | None = None
        phase = "Pending"
        while True:
            pod: Any = await self._call(self.core.read_namespaced_pod, name, namespace)
            status = pod.status
            phase = str(status.phase or "Pending") if status else "Pending"
            conditions = {c.type: c for c in (status.conditions or [])} if status else {}
            if (ready := conditions.get("Ready")) is not None and ready.status == "True":
                return
            if phase in ("Failed", "Succeeded"):
                raise SandboxUnavailable(f"the sandbox pod stopped before it was ready ({phase}).")
            for container in (status.container_statuses or []) if status else []:
                waiting = container.state.waiting if container.state else None
                if waiting is not None and waiting.reason in _FATAL_WAITING:
                    detail = f": {waiting.message}" if waiting.message else ""
                    raise SandboxUnavailable(
                        f"the sandbox pod cannot start: {_FATAL_WAITING[waiting.reason]}{detail}"
                    )
            scheduled = conditions.get("PodScheduled")
            if scheduled is not None and scheduled.status == "False":
                unscheduled = scheduled.message or await self._scheduler_message(name, namespace)
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(self.poll_interval_s)
        if unscheduled:
            raise SandboxUnavailable(f"the sandbox pod could not be scheduled: {unscheduled}")
        waited = f"{self.ready_timeout_s:g} s"
        raise SandboxUnavailable(
            f"the sandbox pod was not ready after {waited} (it is {phase}); try again later."
        )

    async def _scheduler_message(self, name: str, namespace: str) -> str | None:
        selector = f"involvedObject.name={name},reason=FailedScheduling"
        events: Any = await self._call(self.core.list_namespaced_event, namespace, field_selector=selector)
        messages = [e.message for e in events.items if e.message]
        return messages[-1] if messages else None

    def _command(self, sandbox: Sandbox, argv: Sequence[str], env: Mapping[str, str] | None) -> list[str]:
        if not argv:
            raise ValueError("an empty command cannot be run in a sandbox")
        extra = checked_env(env)
        prefix = ["env", *(f"{k}={v}" for k, v in extra.items())] if extra else []
        return [*prefix, *argv]

    async def exec(
        self,
        sandbox: Sandbox,
        argv: Sequence[str],
        *,
        timeout_s: float,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        command = ["timeout", "-s", "KILL", str(math.ceil(timeout_s)), *self._command(sandbox, argv, env)]
        try:
            return await asyncio.get_running_loop().run_in_executor(
                _POOL, self._exec_blocking, sandbox, command, stdin, timeout_s
            )
        except ApiException as exc:
            status = _status_of(exc)
            if status == 404:
                raise SandboxUnavailable(
                    "this sandbox's pod is gone (deleted or evicted); start a new session for a fresh one."
                ) from exc
            if status == 400:
                raise SandboxUnavailable(
                    "this sandbox's pod is not running (starting, stopping or evicted); start a new session."
                ) from exc
            raise SandboxUnavailable(_plain(exc, sandbox.details["namespace"])) from exc

    def _exec_blocking(
        self, sandbox: Sandbox, command: list[str], stdin: bytes | None, timeout_s: float
    ) -> ExecResult:
        started = time.monotonic()
        ws: Any = stream(
            self.core.connect_get_namespaced_pod_exec,
            sandbox.details["pod"],
            sandbox.details["namespace"],
            command=command,
            container=sandbox.details["container"],
            stdin=stdin is not None,
            stdout=True,
            stderr=True,
            tty=False,
            binary=True,
            _preload_content=False,
        )
        out, err = bytearray(), bytearray()
        truncated = timed_out = False
        try:
            if stdin is not None:
                if stdin:
                    ws.write_stdin(stdin)
                ws.close_channel(0)
            while ws.is_open():
                remaining = timeout_s + 5 - (time.monotonic() - started)
                if remaining <= 0:
                    timed_out = True
                    break
                ws.update(timeout=min(remaining, 1.0))
                for buffer, channel in ((out, 1), (err, 2)):
                    chunk = ws.read_channel(channel)
                    room = MAX_OUTPUT_BYTES - len(buffer)
                    truncated = truncated or len(chunk) > room
                    buffer += chunk[: max(room, 0)]
            code = -9 if timed_out else int(ws.returncode)
        finally:
            ws.close()
        elapsed = time.monotonic() - started
        timed_out = timed_out or (code == 137 and elapsed >= timeout_s)
        return ExecResult(
            exit_code=code,
            stdout=out.decode("utf-8", errors="replace"),
            stderr=err.decode("utf-8", errors="replace"),
            timed_out=timed_out,
            truncated=truncated,
        )

    async def wrap(
        self, sandbox: Sandbox, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> LaunchCommand:
        kubeconfig = self.kubeconfig or await asyncio.to_thread(self._write_kubeconfig)
        command = (
            sys.executable,
            "-m",
            "incidentfox.sandboxes.backends.kubernetes_attach",
            "--namespace",
            sandbox.details["namespace"],
            "--pod",
            sandbox.details["pod"],
            "--container",
            sandbox.details["container"],
            "--",
            *self._command(sandbox, argv, env),
        )
        return LaunchCommand(argv=command, env={KUBECONFIG_ENV: str(kubeconfig), "PATH": "/usr/bin:/bin"})

    def _write_kubeconfig(self) -> Path:
        """A kubeconfig for ``kubernetes_attach`` with this backend's server and credentials (0600)."""
        if self.runtime_dir is None:
            raise SandboxUnavailable(
                "the kubernetes sandbox backend was set up without a kubeconfig or a runtime directory, so "
                "it cannot attach to its pods; this is an installation problem."
            )
        cfg = self.api.configuration
        cluster: dict[str, Any] = {"server": cfg.host}
        if cfg.ssl_ca_cert:
            cluster["certificate-authority"] = cfg.ssl_ca_cert
        if not cfg.verify_ssl:
            cluster["insecure-skip-tls-verify"] = True
        token = (cfg.api_key or {}).get("authorization", "")
        token = token.removeprefix("Bearer ").strip()
        user: dict[str, Any] = {"token": token} if token else {}
        if cfg.cert_file and cfg.key_file:
            user.update({"client-certificate": cfg.cert_file, "client-key": cfg.key_file})
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "sandboxes", "cluster": cluster}],
            "users": [{"name": "sandboxes", "user": user}],
            "contexts": [{"name": "sandboxes", "context": {"cluster": "sandboxes", "user": "sandboxes"}}],
            "current-context": "sandboxes",
        }
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        path = self.runtime_dir / "sandbox-kubeconfig"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yaml.safe_dump(document, handle, sort_keys=False)
        self.kubeconfig = path
        return path

    async def touch(self, sandbox: Sandbox) -> None:
        sandbox.last_active_at = now_utc()
        patch = {"metadata": {"annotations": {LAST_ACTIVE: sandbox.last_active_at.isoformat()}}}
        try:
            await self._call(
                self.core.patch_namespaced_pod, sandbox.details["pod"], sandbox.details["namespace"], patch
            )
        except ApiException as exc:
            if exc.status != 404:
                raise SandboxUnavailable(_plain(exc, sandbox.details["namespace"])) from exc

    async def destroy(self, sandbox: Sandbox) -> None:
        name, namespace = sandbox.details["pod"], sandbox.details["namespace"]
        for delete, target in (
            (self.core.delete_namespaced_pod, name),
            (self.networking.delete_namespaced_network_policy, sandbox.details["policy"]),
        ):
            try:
                await self._call(delete, target, namespace, grace_period_seconds=0)
            except ApiException as exc:
                if exc.status != 404:
                    raise SandboxUnavailable(_plain(exc, namespace)) from exc
