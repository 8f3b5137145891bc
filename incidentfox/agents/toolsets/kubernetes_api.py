"""The connection half of the kubernetes toolset: building the API client and naming failures.

``connect`` reads the team's ``integrations.kubernetes``: ``api_url`` + ``token`` (optional
``ca_cert_content``), or ``kubeconfig_content`` (the file's text, stored encrypted), or a
``kubeconfig`` path (set only by the global admin, or the installation's ``KUBECONFIG`` filled in by the
config service for the orgs allowed to use it); optional ``context`` and ``namespace``. It reads no
environment variable. ``api_url`` and the server of ``kubeconfig_content`` pass the egress policy
(``incidentfox.egress``) before and at connect time. The ``kubernetes`` client is synchronous, so
every call goes through ``KubernetesClient.call``, which runs it in a worker thread with a timeout.
``describe_failure`` turns whatever the client raised into one sentence a human can act on.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pydantic
import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.kube_config import _create_temp_file_with_content

from incidentfox.agents.toolsets.base import ToolResult, lookup_dotted
from incidentfox.egress import EgressPolicy, EgressRefused, checked_pool_classes, current_policy

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
    return bool(settings.get("api_url") or settings.get("kubeconfig") or settings.get("kubeconfig_content"))


NOT_CONFIGURED = (
    "Kubernetes is not configured for this team: set integrations.kubernetes.api_url and token, or "
    "integrations.kubernetes.kubeconfig_content (the kubeconfig file's contents)."
)


def _from_kubeconfig_file(path: str, context: str | None, namespace: str | None) -> KubernetesClient:
    try:
        api = k8s_config.new_client_from_config(config_file=path, context=context, persist_config=False)
        if namespace is None:
            contexts, active = k8s_config.list_kube_config_contexts(config_file=path)
            namespace = _context_namespace(contexts, active, context)
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        raise KubernetesNotConfigured(f"Could not load the kubeconfig at {path}: {exc}") from exc
    return KubernetesClient(api=api, default_namespace=namespace)


def _kubeconfig_document(content: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        raise KubernetesNotConfigured(
            "integrations.kubernetes.kubeconfig_content is not valid YAML; paste the whole kubeconfig file."
        ) from exc
    if not isinstance(document, dict):
        raise KubernetesNotConfigured(
            "integrations.kubernetes.kubeconfig_content is not a kubeconfig; paste the whole file."
        )
    return document


def _from_kubeconfig_content(
    document: dict[str, Any], context: str | None, namespace: str | None
) -> KubernetesClient:
    try:
        api = k8s_config.new_client_from_config_dict(document, context=context, persist_config=False)
        if namespace is None:
            contexts = [c for c in document.get("contexts") or [] if isinstance(c, dict)]
            active_name = document.get("current-context")
            active = next((c for c in contexts if c.get("name") == active_name), None)
            namespace = _context_namespace(contexts, active, context)
    except (ConfigException, OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise KubernetesNotConfigured(
            "Could not use integrations.kubernetes.kubeconfig_content: "
            f"{type(exc).__name__}; check its clusters, users and contexts."
        ) from exc
    return KubernetesClient(api=api, default_namespace=namespace)


def _context_namespace(contexts: list[Any], active: Any, context: str | None) -> str | None:
    chosen = next((c for c in contexts if c.get("name") == context), active) if context else active
    return ((chosen or {}).get("context") or {}).get("namespace")


def _from_url(settings: Mapping[str, Any], namespace: str | None) -> KubernetesClient:
    cfg = k8s.Configuration(host=str(settings["api_url"]).rstrip("/"))
    token = settings.get("token")
    if token:
        cfg.api_key = {"authorization": str(token)}
        cfg.api_key_prefix = {"authorization": "Bearer"}
    if settings.get("ca_cert_content"):
        cfg.ssl_ca_cert = _create_temp_file_with_content(str(settings["ca_cert_content"]).encode())
    elif settings.get("ca_cert"):
        cfg.ssl_ca_cert = str(settings["ca_cert"])
    cfg.verify_ssl = bool(settings.get("verify_ssl", True))
    return KubernetesClient(api=k8s.ApiClient(cfg), default_namespace=namespace)


async def _enforce_egress(client: KubernetesClient, url: str, setting: str, policy: EgressPolicy) -> None:
    """Check ``url`` now and make every later connection of ``client`` check it again (DNS rebinding)."""
    try:
        await policy.check_url(url, setting=setting)
    except EgressRefused as exc:
        client.close()
        raise KubernetesNotConfigured(f"Refused to connect: {exc}") from exc
    allowed = await policy.private_allowed()
    pool_manager = client.api.rest_client.pool_manager
    pool_manager.pool_classes_by_scheme = checked_pool_classes(private_allowed=allowed, setting=setting)


async def connect(config: Mapping[str, Any]) -> KubernetesClient:
    """Build the run's client from the team's effective config (see the module docstring).

    Raises ``KubernetesNotConfigured`` with plain words when nothing usable is configured or the
    egress policy refuses the API's address. No request is made here; an unreachable API is reported
    by the first tool call.
    """
    settings = kubernetes_settings(config)
    namespace = settings.get("namespace") or None
    context = settings.get("context") or None
    policy = current_policy()
    if settings.get("api_url"):
        client = _from_url(settings, namespace)
        await _enforce_egress(client, str(settings["api_url"]), "integrations.kubernetes.api_url", policy)
        return client
    if settings.get("kubeconfig_content"):
        document = _kubeconfig_document(str(settings["kubeconfig_content"]))
        client = await asyncio.to_thread(_from_kubeconfig_content, document, context, namespace)
        setting = "the server in integrations.kubernetes.kubeconfig_content"
        await _enforce_egress(client, client.api_url, setting, policy)
        return client
    if settings.get("kubeconfig"):
        return await asyncio.to_thread(_from_kubeconfig_file, str(settings["kubeconfig"]), context, namespace)
    raise KubernetesNotConfigured(NOT_CONFIGURED)


_MAX_STATUS_MESSAGE = 300


def _status_message(exc: ApiException) -> str:
    """The ``message`` of a Kubernetes ``Status`` body, shortened; nothing from any other body.

    A config URL may point at something that is not a Kubernetes API, and whatever that answers must
    not be relayed to Slack or the model; a real API server's Status message (e.g. which RBAC verb is
    missing) is what a user needs to fix the problem.
    """
    try:
        body = json.loads(exc.body or "")
    except ValueError:
        return ""
    if not isinstance(body, dict) or body.get("kind") != "Status":
        return ""
    return str(body.get("message") or "")[:_MAX_STATUS_MESSAGE]


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
                f"Not allowed to {doing} (403 Forbidden from {url}){': ' + message if message else ''}. "
                "Grant read access via RBAC."
            )
        if exc.status == 404:
            return f"Could not {doing}: {message or 'not found'} (404)."
        if exc.status == 400:
            return f"Could not {doing}: {message or 'the API refused the request (400)'}."
        if exc.status == 429:
            wait = (exc.headers or {}).get("Retry-After")
            when = f"retry in {wait} seconds" if wait and str(wait).isdigit() else "retry in a minute"
            return (
                f"Kubernetes API at {url} is throttling requests (429 Too Many Requests) and could not "
                f"{doing}; {when}."
            )
        return f"Kubernetes API at {url} answered {exc.status} when asked to {doing}."
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return f"Kubernetes API at {url} is unreachable ({_network_cause(exc)}); could not {doing}."
    if isinstance(exc, pydantic.ValidationError):
        return f"Kubernetes API at {url} sent a response the client could not read when asked to {doing}."
    if isinstance(exc, EgressRefused):
        return f"Refused to {doing}: {exc}"
    return f"Could not {doing}: {type(exc).__name__}."


def api_failure(exc: BaseException, client: KubernetesClient, doing: str, invocation: str) -> ToolResult:
    return ToolResult.failed(describe_failure(exc, client, doing), invocation=invocation)
