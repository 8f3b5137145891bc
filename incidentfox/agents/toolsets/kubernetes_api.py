"""The connection half of the kubernetes toolset: building the API client and naming failures.

``connect`` reads the team's ``integrations.kubernetes`` (``kubeconfig`` path, or ``api_url`` +
``token``; optional ``context`` and ``namespace``) and falls back to the installation's
``KUBECONFIG``. The ``kubernetes`` client is synchronous, so every call goes through
``KubernetesClient.call``, which runs it in a worker thread with a timeout. ``describe_failure``
turns whatever the client raised into one sentence a human can act on.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pydantic
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from incidentfox.agents.toolsets.base import ToolResult, lookup_dotted

T = TypeVar("T")
_POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="kubernetes")


class KubernetesNotConfigured(Exception):
    """No usable cluster configuration; the message says what to set."""


@dataclass(slots=True)
class KubernetesClient:
    """The per-run connection: an ``ApiClient`` plus the typed APIs built on it."""

    api: k8s.ApiClient
    default_namespace: str | None = None
    timeout: tuple[float, float] = (5.0, 30.0)
    """(connect, read) seconds for every request, so a hung API cannot stall a run."""
    core: k8s.CoreV1Api = field(init=False)
    apps: k8s.AppsV1Api = field(init=False)

    def __post_init__(self) -> None:
        self.core = k8s.CoreV1Api(self.api)
        self.apps = k8s.AppsV1Api(self.api)

    @property
    def api_url(self) -> str:
        return str(self.api.configuration.host)

    async def call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one blocking client method in the Kubernetes thread pool with the request timeout applied.

        A pool of its own, so slow clusters (up to the 30 s read timeout per call) cannot take every
        thread of the event loop's default executor, which the database and DNS also use.
        """
        call = functools.partial(method, *args, _request_timeout=self.timeout, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(_POOL, call)

    async def version(self) -> str:
        info = await self.call(k8s.VersionApi(self.api).get_code)
        return str(info.git_version)

    def close(self) -> None:
        self.api.close()


def kubernetes_settings(config: Mapping[str, Any]) -> Mapping[str, Any]:
    settings = lookup_dotted(config, "integrations.kubernetes")
    return settings if isinstance(settings, Mapping) else {}


def kubernetes_configured(config: Mapping[str, Any]) -> bool:
    """Whether ``connect`` has anything to connect with (used to decide if the toolset is offered)."""
    settings = kubernetes_settings(config)
    if settings.get("enabled") is False:
        return False
    return bool(settings.get("api_url") or settings.get("kubeconfig") or os.environ.get("KUBECONFIG"))


def _from_kubeconfig(path: str, context: str | None, namespace: str | None) -> KubernetesClient:
    try:
        api = k8s_config.new_client_from_config(config_file=path, context=context, persist_config=False)
        if namespace is None:
            contexts, active = k8s_config.list_kube_config_contexts(config_file=path)
            chosen = next((c for c in contexts if c.get("name") == context), active) if context else active
            namespace = ((chosen or {}).get("context") or {}).get("namespace")
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        raise KubernetesNotConfigured(f"Could not load the kubeconfig at {path}: {exc}") from exc
    return KubernetesClient(api=api, default_namespace=namespace)


def _from_url(settings: Mapping[str, Any], namespace: str | None) -> KubernetesClient:
    cfg = k8s.Configuration(host=str(settings["api_url"]).rstrip("/"))
    token = settings.get("token")
    if token:
        cfg.api_key = {"authorization": str(token)}
        cfg.api_key_prefix = {"authorization": "Bearer"}
    if settings.get("ca_cert"):
        cfg.ssl_ca_cert = str(settings["ca_cert"])
    cfg.verify_ssl = bool(settings.get("verify_ssl", True))
    return KubernetesClient(api=k8s.ApiClient(cfg), default_namespace=namespace)


async def connect(config: Mapping[str, Any]) -> KubernetesClient:
    """Build the run's client from team config, falling back to ``KUBECONFIG``.

    Raises ``KubernetesNotConfigured`` with plain words when nothing usable is configured. No request
    is made here; an unreachable API is reported by the first tool call.
    """
    settings = kubernetes_settings(config)
    namespace = settings.get("namespace") or None
    if settings.get("api_url"):
        return _from_url(settings, namespace)
    path = settings.get("kubeconfig") or os.environ.get("KUBECONFIG")
    if not path:
        raise KubernetesNotConfigured(
            "Kubernetes is not configured for this team: set integrations.kubernetes.kubeconfig, "
            "or api_url and token, or KUBECONFIG for the installation."
        )
    return await asyncio.to_thread(_from_kubeconfig, str(path), settings.get("context"), namespace)


def _status_message(exc: ApiException) -> str:
    """The ``message`` of the Status body the API server sent, if it sent one."""
    try:
        body = json.loads(exc.body or "")
    except ValueError:
        return str(exc.reason or "")
    return str(body.get("message") or exc.reason or "") if isinstance(body, dict) else str(exc.reason or "")


def _network_cause(exc: BaseException) -> str:
    text = repr(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "timed out" in text or "timeout" in text:
        return "timed out"
    if "name or service not known" in text or "nodename nor servname" in text:
        return "host name not found"
    return "connection dropped"


def describe_failure(exc: BaseException, client: KubernetesClient, doing: str) -> str:
    """One sentence for what went wrong while trying to ``doing`` (e.g. "list pods in prod")."""
    url = client.api_url
    if isinstance(exc, ApiException):
        message = _status_message(exc)
        if exc.status == 401:
            return (
                f"Kubernetes API at {url} rejected the credentials (401 Unauthorized). "
                "Check the token or kubeconfig in the team's Kubernetes integration."
            )
        if exc.status == 403:
            return (
                f"Not allowed to {doing} (403 Forbidden from {url}): {message}. Grant read access via RBAC."
            )
        if exc.status == 404:
            return f"Could not {doing}: {message or 'not found'} (404)."
        if exc.status == 400:
            return f"Could not {doing}: {message}."
        return f"Kubernetes API at {url} answered {exc.status} {exc.reason} when asked to {doing}."
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return f"Kubernetes API at {url} is unreachable ({_network_cause(exc)}); could not {doing}."
    if isinstance(exc, pydantic.ValidationError):
        return f"Kubernetes API at {url} sent a response the client could not read when asked to {doing}."
    return f"Could not {doing}: {type(exc).__name__}: {exc}"


def api_failure(exc: BaseException, client: KubernetesClient, doing: str, invocation: str) -> ToolResult:
    return ToolResult.failed(describe_failure(exc, client, doing), invocation=invocation)
